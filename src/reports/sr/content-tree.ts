/**
 * The content tree: TID 1500 Imaging Measurement Report as the IHE AI Results (AIR) profile
 * uses it. The algorithm is the device observer (TID 1002/1004); each finding is one
 * measurement group (TID 1410 when it has a region, else TID 1501) carrying its tracking
 * identifiers, algorithm identification (TID 4019), measurements (TID 300) and qualitative
 * evaluations; the report's narrative goes under Qualitative Evaluations.
 */
import { UNVALIDATED_MODEL_LABEL, type ImageRef, type ReportContent, type ReportFinding, type ReportMeasurement } from '../content.js';
import { CODES, lateralityCode, modalityCode, procedureCode, quantityCode, severityCode, ucumCode, wordsCode } from './codes.js';
import { code, container, image, num, pname, scoord, scoord3d, text, uidref, type ContentItem, type GraphicType } from './items.js';
import { uidFromNames } from '../../dicom/new-uid.js';
import { RadiantError } from '../../errors.js';

export const RADIANT_MANUFACTURER = 'RadiantAI';

/** TID 1004 Device Observer Identifying Attributes of the algorithm, with its observer type (TID 1002). */
function deviceObserver(c: ReportContent): ContentItem[] {
  const a = c.algorithm;
  const items: ContentItem[] = [
    code('HAS OBS CONTEXT', CODES.observerType, CODES.device),
    uidref('HAS OBS CONTEXT', CODES.deviceObserverUid, a.deviceUid),
    text('HAS OBS CONTEXT', CODES.deviceObserverName, a.name),
    text('HAS OBS CONTEXT', CODES.deviceObserverManufacturer, RADIANT_MANUFACTURER),
    text('HAS OBS CONTEXT', CODES.deviceObserverModelName, a.name),
  ];
  // The model file's SHA-256 identifies exactly which weights produced the findings; TID 1004
  // has no version row, and the serial number is the row meant to tell one unit from another.
  if (a.sha256) items.push(text('HAS OBS CONTEXT', CODES.deviceObserverSerialNumber, a.sha256));
  return items;
}

/**
 * TID 1204 language, TID 1001/1002 observer context, procedure reported. A draft's observer is
 * the algorithm (a device). A signed report's is the radiologist (a person, TID 1003), inherited
 * by everything the radiologist wrote; the model's findings the radiologist accepted carry the
 * device observer in their own group (findingGroup), so they keep their AI origin.
 */
function documentContext(c: ReportContent): ContentItem[] {
  const items: ContentItem[] = [code('HAS CONCEPT MOD', CODES.languageOfContent, CODES.englishUs)];
  if (c.signer) {
    items.push(
      code('HAS OBS CONTEXT', CODES.observerType, CODES.person),
      pname('HAS OBS CONTEXT', CODES.personObserverName, c.signer.name),
      text('HAS OBS CONTEXT', CODES.personObserverOrganization, c.signer.organization),
    );
  } else items.push(...deviceObserver(c));
  items.push(code('HAS CONCEPT MOD', CODES.procedureReported, procedureCode(c.modality, c.bodyPart)));
  return items;
}

/** Whether a finding's words are the model's (accepted or not yet reviewed), not the radiologist's. */
const byModel = (f: ReportFinding) => (f.author ?? 'ai') === 'ai';

/** TID 1600: one Image Library Group per series, listing every analysed instance once. */
function imageLibrary(c: ReportContent): ContentItem {
  const bySeries = new Map<string, ImageRef[]>();
  const seen = new Set<string>();
  for (const ref of c.imageLibrary) {
    const key = `${ref.sopInstanceUid}#${ref.frameNumber ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const list = bySeries.get(ref.seriesInstanceUid) ?? [];
    list.push(ref);
    bySeries.set(ref.seriesInstanceUid, list);
  }
  const modality = modalityCode(c.modality);
  const groups = [...bySeries.values()].map((refs) =>
    container('CONTAINS', CODES.imageLibraryGroup, [
      ...(modality ? [code('HAS ACQ CONTEXT', CODES.modality, modality)] : []),
      ...refs.map((ref) => image('CONTAINS', null, ref)),
    ]),
  );
  return container('CONTAINS', CODES.imageLibrary, groups);
}

/**
 * TID 4019, repeated in each group so a group keeps its provenance when extracted. An
 * unvalidated model says so in the name and the version; the parameters carry the model's
 * identity and the analysis' provenance digests (what was sent, never the model's text).
 */
function algorithmIdentification(c: ReportContent): ContentItem[] {
  const a = c.algorithm;
  const params = [
    a.sha256 ? `sha256=${a.sha256}` : null,
    a.quantization ? `quantization=${a.quantization}` : null,
    a.backend ? `backend=${a.backend}` : null,
    a.promptTemplate ? `prompt=${a.promptTemplate}` : null,
    `validation=${a.validated ? 'validated' : 'unvalidated'}: ${a.validation}`,
    ...(a.provenance ?? []),
  ].filter((p): p is string => p !== null);
  const model = a.sha256 ? `model sha256:${a.sha256.slice(0, 16)}` : 'model not identified';
  return [
    text('HAS CONCEPT MOD', CODES.algorithmName, a.validated ? a.name : `${a.name} (unvalidated model)`),
    text('HAS CONCEPT MOD', CODES.algorithmVersion, `${a.version}; ${model}; ${a.validated ? 'validated' : 'unvalidated model'}`),
    ...params.map((p) => text('HAS CONCEPT MOD', CODES.algorithmParameters, p)),
  ];
}

/** A safety-gate hit as a TEXT row: "rule: phrase" (prefixed with what it concerns, outside a finding). */
function safetyFlagItem(rule: string, phrase: string, where?: string): ContentItem {
  const said = phrase.trim() ? `: ${phrase}` : '';
  return text('CONTAINS', CODES.safetyFlag, `${where ? `${where} ` : ''}${rule}${said}`);
}

/** The closed outline of a box, or a point when the box has no extent. */
function regionGeometry(box: [number, number, number, number]): { type: GraphicType; points: Array<[number, number]> } {
  if (!box.every(Number.isFinite)) throw new RadiantError('invalid-input', `finding region has a non-finite coordinate: ${box.join(',')}`);
  const [x0, y0, x1, y1] = box;
  if (x0 === x1 && y0 === y1) return { type: 'POINT', points: [[x0, y0]] };
  return {
    type: 'POLYLINE',
    points: [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
      [x0, y0],
    ],
  };
}

function measurementItems(ms: ReportMeasurement[], region: () => ContentItem[] = () => []): ContentItem[] {
  return ms
    .filter((m) => Number.isFinite(m.value))
    .map((m) => num('CONTAINS', quantityCode(m.quantity), m.value, ucumCode(m.unit), region()));
}

/**
 * The Tracking Identifier (TID 4108: free text naming the tracked finding). A finding with a region
 * is named the way Cornerstone3D's SR adapters name the annotation tool that draws it,
 * "Cornerstone3DTools@^0.1.0:RectangleROI" (box) or "…:Probe" (point), followed by ":Finding n".
 * OHIF 3 loads an SR's findings into its measurement panel ("rehydrates" them) only through those
 * adapters, which pick one by this identifier (by prefix); without it OHIF lists none of them.
 * A finding without a region has nothing to draw and keeps the plain "Finding n".
 */
function trackingIdentifier(f: ReportFinding, type: GraphicType | null): string {
  const tool = type === 'POLYLINE' ? 'RectangleROI' : type === 'POINT' ? 'Probe' : null;
  return tool ? `${CORNERSTONE_TOOLS}:${tool}:Finding ${f.number}` : `Finding ${f.number}`;
}

/** The tracking-identifier prefix Cornerstone3D's SR adapters recognise (@cornerstonejs/adapters' CORNERSTONE_3D_TAG). */
const CORNERSTONE_TOOLS = 'Cornerstone3DTools@^0.1.0';

function findingGroup(c: ReportContent, f: ReportFinding, ms: ReportMeasurement[]): ContentItem {
  const g = f.region ? regionGeometry(f.region.box) : null;
  const children: ContentItem[] = [
    text('HAS OBS CONTEXT', CODES.trackingIdentifier, trackingIdentifier(f, g?.type ?? null)),
    uidref('HAS OBS CONTEXT', CODES.trackingUniqueIdentifier, f.trackingUid),
  ];
  // The model's finding in a signed report: the algorithm observed it (its own observer context,
  // replacing the radiologist's inherited one), the radiologist accepted it.
  const accepted = c.signer && byModel(f);
  if (accepted) children.push(...deviceObserver(c));
  /**
   * The region as an SCOORD on its image. Each measurement of the finding (its NUMs, the
   * confidence included) also says it was inferred from that region (INFERRED FROM, as TID 300
   * measurements do): Cornerstone3D's adapters read a group's geometry under its first NUM when
   * it has one, and skip the finding when that NUM has none.
   */
  const region = (rel: 'CONTAINS' | 'INFERRED FROM') =>
    f.region && g ? [scoord(rel, CODES.imageRegion, g.type, g.points, image('SELECTED FROM', CODES.originalSource, f.region.image))] : [];
  const inferredFrom = () => region('INFERRED FROM');
  if (f.region) {
    children.push(...region('CONTAINS'));
  } else {
    children.push(...f.images.map((ref) => image('CONTAINS', CODES.source, ref)));
  }
  // The radiologist's own words do not name the algorithm as their author.
  if (byModel(f)) children.push(...algorithmIdentification(c));
  // An empty answer from the model is said so, never written empty (Code Meaning is type 1).
  const description = filled(f.description, '(no description given)');
  children.push(code('CONTAINS', CODES.finding, wordsCode('F', description)));
  if ([...description.trim()].length > 64) children.push(text('CONTAINS', CODES.comment, description));
  if (f.anatomicalLocation?.trim()) {
    const lat = lateralityCode(f.laterality);
    children.push(
      code(
        'HAS CONCEPT MOD',
        CODES.findingSite,
        wordsCode('S', f.anatomicalLocation),
        lat ? [code('HAS CONCEPT MOD', CODES.laterality, lat)] : [],
      ),
    );
  }
  children.push(...measurementItems(ms, inferredFrom));
  if (f.confidence !== null && Number.isFinite(f.confidence)) {
    // The model's own 0–1 scale, kept as given (three decimals), dimensionless.
    const confidence = Math.round(Math.min(1, Math.max(0, f.confidence)) * 1000) / 1000;
    children.push(num('CONTAINS', CODES.certaintyOfFinding, confidence, CODES.noUnits, inferredFrom()));
  }
  const sev = severityCode(f.severity);
  if (sev) children.push(code('CONTAINS', CODES.severity, sev));
  if (f.recommendation?.trim()) children.push(text('CONTAINS', CODES.recommendation, f.recommendation));
  if (accepted) children.push(text('CONTAINS', CODES.comment, `AI-generated finding, accepted by ${c.signer!.display ?? c.signer!.name}`));
  for (const flag of f.safetyFlags ?? []) children.push(safetyFlagItem(flag.rule, flag.phrase));
  return container('CONTAINS', CODES.measurementGroup, children);
}

/**
 * The finding's region in its Frame of Reference, as a second TID 1410 group of the same
 * tracked finding (same Tracking Identifier and UID): TID 1410 takes one Image Region, SCOORD
 * (on the image, row 7) or SCOORD3D (row 9), not both, and the image-bound SCOORD is the one
 * viewers draw on the slice. OHIF merges groups by Tracking Unique Identifier and draws the
 * first region it meets, the SCOORD.
 */
function findingGroup3d(c: ReportContent, f: ReportFinding): ContentItem | null {
  const where = f.region?.patient;
  if (!f.region || !where || where.corners.length !== 4) return null;
  return container('CONTAINS', CODES.measurementGroup, [
    text('HAS OBS CONTEXT', CODES.trackingIdentifier, trackingIdentifier(f, regionGeometry(f.region.box).type)),
    uidref('HAS OBS CONTEXT', CODES.trackingUniqueIdentifier, f.trackingUid),
    where.corners.every((p) => p.every((v, i) => v === where.corners[0]![i]))
      ? scoord3d('CONTAINS', CODES.imageRegion, 'POINT', [where.corners[0]!], where.frameOfReferenceUid)
      : scoord3d('CONTAINS', CODES.imageRegion, 'POLYGON', [...where.corners, where.corners[0]!], where.frameOfReferenceUid),
    ...algorithmIdentification(c),
  ]);
}

/** Measurements not tied to a listed finding still belong in the report, in their own group. */
function unassignedGroup(c: ReportContent, ms: ReportMeasurement[]): ContentItem {
  return container('CONTAINS', CODES.measurementGroup, [
    text('HAS OBS CONTEXT', CODES.trackingIdentifier, 'Unassigned measurements'),
    // Derived, not random, so every version of the report keeps the group's identity.
    uidref(
      'HAS OBS CONTEXT',
      CODES.trackingUniqueIdentifier,
      uidFromNames('radiant-sr-unassigned', c.study.studyInstanceUid, String(c.reportId)),
    ),
    ...algorithmIdentification(c),
    ...measurementItems(ms),
  ]);
}

function imagingMeasurements(c: ReportContent): ContentItem {
  const numbers = new Set(c.findings.map((f) => f.number));
  const groups = c.findings.flatMap((f) => {
    const group = findingGroup(
      c,
      f,
      c.measurements.filter((m) => m.findingNumber === f.number),
    );
    const in3d = findingGroup3d(c, f);
    return in3d ? [group, in3d] : [group];
  });
  const unassigned = c.measurements.filter((m) => m.findingNumber === null || !numbers.has(m.findingNumber));
  if (unassigned.some((m) => Number.isFinite(m.value))) groups.push(unassignedGroup(c, unassigned));
  return container('CONTAINS', CODES.imagingMeasurements, groups);
}

function filled(value: string, otherwise: string): string {
  return value.trim() ? value : otherwise;
}

function qualitativeEvaluations(c: ReportContent): ContentItem {
  const items: ContentItem[] = [text('CONTAINS', CODES.impression, filled(c.impression, '(no impression given)'))];
  if (c.procedure || c.technique) {
    items.push(text('CONTAINS', CODES.procedureDescription, [c.procedure, c.technique].filter(Boolean).join('\n')));
  }
  if (c.comparison?.trim()) items.push(text('CONTAINS', CODES.comparison, c.comparison));
  if (c.limitations?.trim()) items.push(text('CONTAINS', CODES.limitations, c.limitations));
  if (c.amendmentReason?.trim()) items.push(text('CONTAINS', CODES.amendmentReason, c.amendmentReason));
  for (const flag of c.safetyFlags ?? []) items.push(safetyFlagItem(flag.rule, flag.phrase, `(${flag.target})`));
  if (!c.algorithm.validated) items.push(text('CONTAINS', CODES.comment, UNVALIDATED_MODEL_LABEL));
  items.push(text('CONTAINS', CODES.comment, c.disclaimer));
  return container('CONTAINS', CODES.qualitativeEvaluations, items);
}

/**
 * Whether the report is a TID 1500 Imaging Measurement Report: it has a region for viewers to
 * draw. Without one, the same content goes under a Diagnostic imaging report root that viewers
 * show as text (sr-builder.ts rootConcept).
 */
export function drawsRegions(c: ReportContent): boolean {
  return c.findings.some((f) => f.region);
}

/**
 * The report as text only, for its text rendition beside a TID 1500 SR (OHIF 3 shows a TID 1500
 * report as its boxes alone, so its impression and box-less findings would not be readable in the
 * viewer): the same content with each region replaced by its image, referenced as the finding's
 * Source like a finding that never had a region. drawsRegions is then false: a text report.
 */
export function asTextReport(c: ReportContent): ReportContent {
  return {
    ...c,
    findings: c.findings.map((f) => {
      if (!f.region) return f;
      const cited = f.images.some(
        (i) => i.sopInstanceUid === f.region!.image.sopInstanceUid && i.frameNumber === f.region!.image.frameNumber,
      );
      return { ...f, region: null, images: cited ? f.images : [f.region.image, ...f.images] };
    }),
  };
}

/**
 * The root container's children, in TID 1500 row order. A report shown as text leaves out the
 * Image Library: its entries are nameless IMAGE items (TID 1601), which OHIF 3's text view cannot
 * render (it fails on an item without a concept name, and the whole report with it); every image
 * stays referenced by its finding and in the Current Requested Procedure Evidence.
 */
export function buildContentTree(c: ReportContent): ContentItem[] {
  const library = drawsRegions(c) ? [imageLibrary(c)] : [];
  return [...documentContext(c), ...library, imagingMeasurements(c), qualitativeEvaluations(c)];
}

/** Every instance the tree references (image library, sources, regions), for the evidence. */
export function referencedImages(c: ReportContent): ImageRef[] {
  return [...c.imageLibrary, ...c.findings.flatMap((f) => [...f.images, ...(f.region ? [f.region.image] : [])])];
}
