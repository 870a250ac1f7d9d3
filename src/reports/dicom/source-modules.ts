import type { NaturalizedDataset } from 'dcmjs';
import type { ReportContent } from '../content.js';
import { cs, daFromStored, isNonAscii, lo, pn, sh, tmFromStored } from '../../dicom/vr-values.js';

/**
 * What every report object (SR, Encapsulated PDF) copies from the source study, the same way:
 * the Patient and General Study modules, and the Specific Character Set the result needs.
 */

export function patientAndStudy(c: ReportContent): NaturalizedDataset {
  const p = c.patient;
  const s = c.study;
  const ds: NaturalizedDataset = {
    PatientName: p.name ? pn(p.name) : '',
    PatientID: lo(p.id),
    PatientBirthDate: daFromStored(p.birthDate),
    PatientSex: p.sex && /^[MFO]$/.test(p.sex) ? p.sex : '',
    StudyInstanceUID: s.studyInstanceUid,
    StudyDate: daFromStored(s.studyDate),
    StudyTime: tmFromStored(s.studyTime),
    ReferringPhysicianName: s.referringPhysicianName ? pn(s.referringPhysicianName) : '',
    StudyID: s.studyId ? sh(s.studyId) : '',
    AccessionNumber: s.accessionNumber ? sh(s.accessionNumber) : '',
  };
  if (p.issuer) ds.IssuerOfPatientID = lo(p.issuer);
  if (s.studyDescription) ds.StudyDescription = lo(s.studyDescription);
  return ds;
}

/** Everything in the file that is text a person could have typed (for the character set). */
function anyNonAscii(value: unknown): boolean {
  if (typeof value === 'string') return isNonAscii(value);
  if (Array.isArray(value)) return value.some(anyNonAscii);
  if (value && typeof value === 'object' && !(value instanceof ArrayBuffer) && !ArrayBuffer.isView(value))
    return Object.values(value).some(anyNonAscii);
  return false;
}

/**
 * dcmjs writes every string as UTF-8, so a file with any non-ASCII text must say ISO_IR 192
 * whatever the source study used; the names are already decoded, so nothing is lost. An
 * all-ASCII file keeps the source's declaration (ASCII is valid in every one of them), or none.
 */
export function setCharacterSet(ds: NaturalizedDataset, source: string | null): void {
  const charset = anyNonAscii(ds) ? 'ISO_IR 192' : (source ?? undefined);
  if (charset) ds.SpecificCharacterSet = cs(charset) === charset ? charset : 'ISO_IR 192';
}
