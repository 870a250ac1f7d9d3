import { expect } from 'chai';
import { negotiateRetrieve, parseAccept, retrieveSyntaxFor } from '../../dicomweb/accept.js';
import { assertSafeKey, instanceKey } from '../../storage/keys.js';
import { isValidUid } from '../../src/dicom/uids.js';

const never = () => undefined;

describe('unit: Accept negotiation', () => {
  it('no header is */*; q orders, q=0 drops', () => {
    expect(parseAccept(undefined).map((r) => r.type)).to.deep.equal(['*/*']);
    expect(parseAccept('text/plain;q=0.2, application/json, image/png;q=0').map((r) => r.type)).to.deep.equal([
      'application/json',
      'text/plain',
    ]);
  });
  it('quoted parameters may hold commas', () => {
    const r = parseAccept('multipart/related; type="application/dicom"; transfer-syntax="1.2.840.10008.1.2.1", */*;q=0.1');
    expect(r[0]!.params).to.deep.equal({ type: 'application/dicom', 'transfer-syntax': '1.2.840.10008.1.2.1' });
  });
  it('WADO-RS: the default syntax, as stored, an explicit syntax when every stored one converts, else the reasons', () => {
    const stored = new Set(['1.2.840.10008.1.2.1']);
    // PS3.18 §8.7.3.4: no transfer-syntax is the default, Explicit VR Little Endian; `*` as stored.
    for (const h of [undefined, '*/*', 'multipart/related', 'multipart/related; type="application/dicom"']) {
      expect(negotiateRetrieve(h, stored, never), String(h)).to.deep.equal({
        ok: true,
        transferSyntax: '1.2.840.10008.1.2.1',
        byDefault: true,
      });
    }
    expect(negotiateRetrieve('multipart/related; type="application/dicom"; transfer-syntax=*', stored, never)).to.deep.equal({
      ok: true,
      transferSyntax: '*',
    });
    expect(
      negotiateRetrieve('multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80', stored, never),
    ).to.deep.equal({
      ok: true,
      transferSyntax: '1.2.840.10008.1.2.4.80',
    });
    const no = negotiateRetrieve('multipart/related; type=application/dicom; transfer-syntax=9.9', stored, () => 'cannot');
    expect(no.ok).to.equal(false);
    expect(negotiateRetrieve('image/jpeg', stored, never).ok).to.equal(false);
  });
});

describe('unit: the default retrieve syntax per instance (PS3.18 §8.7.3.4)', () => {
  const byDefault = { transferSyntax: '1.2.840.10008.1.2.1', byDefault: true } as const;
  it('lossless and uncompressed become Explicit VR Little Endian; lossy and undecodable stay as stored', () => {
    expect(retrieveSyntaxFor(byDefault, '1.2.840.10008.1.2.4.80', never)).to.equal('1.2.840.10008.1.2.1');
    expect(retrieveSyntaxFor(byDefault, '1.2.840.10008.1.2', never)).to.equal('1.2.840.10008.1.2.1');
    expect(retrieveSyntaxFor(byDefault, '1.2.840.10008.1.2.1', never)).to.equal('*');
    expect(retrieveSyntaxFor(byDefault, '1.2.840.10008.1.2.4.50', never)).to.equal('*');
    expect(retrieveSyntaxFor(byDefault, '1.2.840.10008.1.2.4.57', () => 'cannot be decoded')).to.equal('*');
  });
  it('a named syntax applies to every instance', () => {
    expect(retrieveSyntaxFor({ transferSyntax: '1.2.840.10008.1.2.4.90' }, '1.2.840.10008.1.2.4.50', never)).to.equal(
      '1.2.840.10008.1.2.4.90',
    );
    expect(retrieveSyntaxFor({ transferSyntax: '*' }, '1.2.840.10008.1.2.4.80', never)).to.equal('*');
  });
});

describe('unit: UIDs and storage keys', () => {
  it('UID syntax (PS3.5 9.1)', () => {
    for (const ok of ['1.2.840.10008.1.2', '0', '1.0.3']) expect(isValidUid(ok), ok).to.equal(true);
    for (const bad of ['', '1..2', '1.02', '.1', '1.2.', 'a.b', `1.${'1'.repeat(63)}`, 12])
      expect(isValidUid(bad), String(bad)).to.equal(false);
  });
  it('instance keys are built from valid UIDs only', () => {
    expect(instanceKey('1.2', '1.3', '1.4')).to.equal('studies/1.2/series/1.3/instances/1.4.dcm');
    expect(() => instanceKey('1.2', '../x', '1.4')).to.throw(/Series Instance UID/);
  });
  it('keys cannot climb out of the store', () => {
    expect(() => assertSafeKey('a/b.dcm')).not.to.throw();
    for (const bad of ['/etc/passwd', 'a/../b', 'a//b', 'a\\b', 'a\u0000b'])
      expect(() => assertSafeKey(bad), JSON.stringify(bad)).to.throw();
  });
});
