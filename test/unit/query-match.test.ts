import { expect } from 'chai';
import { findAttribute, normaliseTag, resolveKey, type AttributeDef } from '../../src/query/attributes.js';
import { parseMatch, QueryError } from '../../src/query/match.js';
import { attributeMatchSql, type Dialect, type SqlFragment } from '../../src/catalog/query/conditions.js';

/**
 * PS3.4 C.2.2.2 matching: query values parsed into match descriptions (src/query/match.ts), which
 * the index writes as SQL fragments (src/catalog/query/conditions.ts). Pure, no database.
 */
type MatchOptions = { dialect: Dialect; fuzzy: boolean };
const sqlite: MatchOptions = { dialect: 'sqlite', fuzzy: false };
const pg: MatchOptions = { dialect: 'pg', fuzzy: false };
const compileMatch = (d: AttributeDef, value: string, opts: MatchOptions): SqlFragment | undefined => {
  const m = parseMatch(d, value, { fuzzy: opts.fuzzy });
  return m && attributeMatchSql(m, opts.dialect);
};
const def = (keyword: string): AttributeDef => {
  const d = findAttribute(keyword);
  if (!d) throw new Error(`no attribute ${keyword}`);
  return d;
};

describe('unit: query matching', () => {
  it('universal matching (empty or *) adds no condition', () => {
    expect(compileMatch(def('AccessionNumber'), '', sqlite)).to.equal(undefined);
    expect(compileMatch(def('AccessionNumber'), '*', sqlite)).to.equal(undefined);
  });
  it('single value is equality; PN on the upper-cased column', () => {
    expect(compileMatch(def('PatientName'), 'doe', sqlite)).to.deep.equal({ sql: '?? = ?', bindings: ['p.patient_name_norm', 'DOE'] });
  });
  it('wildcards: SQLite GLOB, PostgreSQL LIKE with escaping', () => {
    expect(compileMatch(def('PatientName'), 'DOE^J*', sqlite)).to.deep.equal({
      sql: '?? GLOB ?',
      bindings: ['p.patient_name_norm', 'DOE^J*'],
    });
    expect(compileMatch(def('PatientName'), 'DOE^J*', pg)).to.deep.equal({
      sql: "?? LIKE ? ESCAPE '\\'",
      bindings: ['p.patient_name_norm', 'DOE^J%'],
    });
    expect(compileMatch(def('AccessionNumber'), 'a[b*', sqlite)?.bindings).to.deep.equal(['st.accession_number', 'a[[]b*']);
  });
  it('no wildcards on UIDs; a list of UIDs is IN', () => {
    expect(compileMatch(def('StudyInstanceUID'), '1.2.*', sqlite)).to.deep.equal({
      sql: '?? = ?',
      bindings: ['st.study_instance_uid', '1.2.*'],
    });
    expect(compileMatch(def('StudyInstanceUID'), '1.2.3\\1.2.4', sqlite)).to.deep.equal({
      sql: '?? IN (?, ?)',
      bindings: ['st.study_instance_uid', '1.2.3', '1.2.4'],
    });
  });
  it('date ranges: closed, open-ended either side', () => {
    expect(compileMatch(def('StudyDate'), '20200101-20201231', sqlite)).to.deep.equal({
      sql: '(?? >= ? AND ?? <= ?)',
      bindings: ['st.study_date', '20200101', 'st.study_date', '20201231'],
    });
    expect(compileMatch(def('StudyDate'), '20200101-', sqlite)).to.deep.equal({ sql: '?? >= ?', bindings: ['st.study_date', '20200101'] });
    expect(compileMatch(def('StudyDate'), '-20201231', sqlite)).to.deep.equal({ sql: '?? <= ?', bindings: ['st.study_date', '20201231'] });
  });
  it('a time range end covers the whole of its last unit', () => {
    expect(compileMatch(def('StudyTime'), '1010-1200', sqlite)?.bindings).to.deep.equal([
      'st.study_time',
      '1010',
      'st.study_time',
      '120099.999999',
    ]);
  });
  it('malformed dates are QueryErrors', () => {
    expect(() => compileMatch(def('StudyDate'), 'notadate', sqlite)).to.throw(QueryError, /DA/);
    expect(() => compileMatch(def('StudyDate'), '2020-13-45', sqlite)).to.throw(QueryError, /range/);
  });
  it('fuzzy PN: every query component prefix-matches some component', () => {
    const f = compileMatch(def('PatientName'), 'doe^jo', { dialect: 'sqlite', fuzzy: true })!;
    expect(f.sql.match(/GLOB/g)).to.have.length(8);
    expect(f.bindings).to.include.members(['DOE*', '*^DOE*', 'JO*', '*^JO*']);
  });
  it('multi-valued CS (ModalitiesInStudy) matches one value among the stored ones', () => {
    const f = compileMatch(def('ModalitiesInStudy'), 'CT\\MR', sqlite)!;
    expect(f.bindings).to.include.members(['CT', 'CT\\*', '*\\CT', '*\\CT\\*', 'MR']);
  });
  it('parses into a match description on the column, written for no database', () => {
    expect(parseMatch(def('PatientName'), 'doe*', { fuzzy: false })).to.deep.equal({
      kind: 'attribute',
      column: 'p.patient_name_norm',
      upper: false,
      match: { op: 'pattern', tokens: [{ lit: 'DOE' }, '*'] },
    });
    expect(parseMatch(def('StudyDate'), '20200101-', { fuzzy: false })?.match).to.deep.equal({ op: 'range', from: '20200101' });
    expect(parseMatch(def('SeriesNumber'), '1\\2', { fuzzy: false })?.match).to.deep.equal({ op: 'oneOf', values: [1, 2] });
    expect(parseMatch(def('SpecificCharacterSet'), 'ISO_IR 192', { fuzzy: false })).to.equal(undefined);
  });
  it('keys resolve by keyword or tag, in either spelling', () => {
    expect(normaliseTag('(0010,0010)')).to.equal('00100010');
    expect(normaliseTag('00100010')).to.equal('00100010');
    expect(normaliseTag('PatientName')).to.equal(undefined);
    expect(resolveKey('PatientName')?.def.tag).to.equal('00100010');
    expect(resolveKey('00100020')?.def.keyword).to.equal('PatientID');
    expect(resolveKey('NotAnAttribute')).to.equal(undefined);
  });
});
