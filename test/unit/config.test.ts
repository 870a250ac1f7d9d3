import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';

describe('unit: configuration from an environment object', () => {
  it('offline defaults: SQLite and local storage under ./data', () => {
    const c = loadConfig({}, '/srv/node');
    expect(c.mode).to.equal('offline');
    expect(c.dataDir).to.equal('/srv/node/data');
    expect(c.storage).to.deep.include({ type: 'local', root: '/srv/node/data/storage' });
    expect(c.dicom.aeTitle).to.equal('RADIANT');
    expect(c.dicom.port).to.equal(11112);
    expect(c.httpPort).to.equal(8042);
    expect(c.dicom.allowlist).to.equal(false);
  });
  it('empty strings count as unset; numbers are coerced; an AE list turns the allowlist on', () => {
    const c = loadConfig({ DICOM_PORT: '104', HTTP_PORT: '', DICOM_ALLOWED_AES: 'A,B', DATA_DIR: 'd' }, '/srv/node');
    expect(c.dicom.port).to.equal(104);
    expect(c.httpPort).to.equal(8042);
    expect(c.dicom.allowlist).to.equal(true);
    expect(c.dicom.allowedAes).to.deep.equal(['A', 'B']);
    expect(c.dataDir).to.equal('/srv/node/d');
  });
  it('names the variable and the value it refuses', () => {
    expect(() => loadConfig({ DICOM_PORT: 'abc' }, '/')).to.throw(/DICOM_PORT="abc" is invalid/);
    expect(() => loadConfig({ DICOM_PORT: '70000' }, '/')).to.throw(/DICOM_PORT="70000"/);
    expect(() => loadConfig({ MODE: 'weird' }, '/')).to.throw(/MODE="weird"/);
    expect(() => loadConfig({ S3_BUCKET: 'b' }, '/')).to.throw(/S3_BUCKET/);
  });
  it('AUTO_PUBLISH follows AUTO_ANALYZE unless set; REPORT_PUBLISH_WAIT_MS defaults to a minute', () => {
    expect(loadConfig({}, '/').analysis).to.include({ autoPublish: false, publishWaitMs: 60_000 });
    expect(loadConfig({ AUTO_ANALYZE: 'all' }, '/').analysis.autoPublish).to.equal(true);
    expect(loadConfig({ AUTO_ANALYZE: 'all', AUTO_PUBLISH: 'off' }, '/').analysis.autoPublish).to.equal(false);
    expect(loadConfig({ REPORT_PUBLISH_WAIT_MS: '0' }, '/').analysis.publishWaitMs).to.equal(0);
  });
  it('AUTO_ANALYZE=rules needs its rules', () => {
    expect(() => loadConfig({ AUTO_ANALYZE: 'rules' }, '/')).to.throw(/AUTO_ANALYZE_RULES/);
  });
});
