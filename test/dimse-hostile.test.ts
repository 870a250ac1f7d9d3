import { expect } from 'chai';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { allowlist } from '../dimse/allowlist.js';
import { auditRows } from './helpers/api.js';
import { echoscu } from './helpers/dcmtk.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import {
  ABORT,
  RELEASE_RQ,
  associate,
  associateRq,
  connectRaw,
  echoRq,
  nodeDestroyed,
  pduTypes,
  type RawPeer,
} from './helpers/raw-association.js';

/**
 * What one hostile or broken peer can do to the DICOM listener (issue 13, items 2 and 12): TCP
 * connections that never associate, associations that go quiet and hold their slot, one AE or one
 * address taking every slot, a peer that never closes after a rejection or release. Peers are raw
 * sockets that never close their own end, so only the node can free what they hold; DCMTK echoscu
 * is the well-behaved caller that must keep getting in.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** PS3.8 9.3.4: A-ASSOCIATE-RJ transient (2), service-provider presentation (3), local limit exceeded (2). */
const LOCAL_LIMIT = { type: 'reject', result: 2, source: 3, reason: 2 };

type Details = Record<string, unknown>;
const detailsOf = (row: { details: string | null }): Details => JSON.parse(row.details ?? '{}') as Details;

describe('DIMSE listener against hostile peers', function () {
  this.timeout(60_000);
  const peers: RawPeer[] = [];
  const open = async (port: number, localAddress?: string) => {
    const p = await connectRaw(port, localAddress);
    peers.push(p);
    return p;
  };
  afterEach(() => {
    for (const p of peers.splice(0)) p.socket.destroy();
  });

  describe('ARTIM and idle timeouts', () => {
    let node: TestNode;
    before(async () => {
      node = await startTestNode({
        DICOM_ARTIM_TIMEOUT_SECONDS: '1',
        DICOM_IDLE_TIMEOUT_SECONDS: '2',
        DICOM_MAX_ASSOCIATIONS: '3',
        DICOM_MAX_ASSOCIATIONS_PER_AE: '3',
      });
    });
    after(async () => node?.cleanup());

    it('destroys TCP connections that send no A-ASSOCIATE-RQ after the ARTIM timeout; echoscu gets in meanwhile', async () => {
      const idle = await Promise.all([1, 2, 3, 4, 5].map(() => open(node.dicomPort, '127.0.0.2')));
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
      const started = Date.now();
      await Promise.race([Promise.all(idle.map((p) => p.ended)), sleep(8000)]);
      for (const p of idle) expect(await nodeDestroyed(p), 'the node let go of the idle connection').to.equal(true);
      expect(Date.now() - started).to.be.below(8000);
      const rows = (await auditRows(node, 'dimse.association-rejected')).filter((r) => /(^|:)127\.0\.0\.2:/.test(r.peer ?? ''));
      expect(rows).to.have.length(5);
      for (const r of rows) {
        expect(detailsOf(r).reason).to.equal('no-association-request');
        expect(r.outcome).to.equal('failure');
      }
    });

    it('aborts associations that go quiet after the idle timeout, destroys them and frees their slots', async () => {
      const hogs = await Promise.all([1, 2, 3].map(() => open(node.dicomPort)));
      for (const h of hogs) expect(await associate(h, 'HOG')).to.deep.equal({ type: 'accept' });
      expect(node.dimse.activeAssociations).to.equal(3);
      // Every slot is taken: the lockout the idle timeout ends.
      const locked = await echoscu(node.dicomPort);
      expect(locked.code, locked.output).to.not.equal(0);
      expect(locked.output).to.match(/Local Limit Exceeded/);

      await until('the quiet associations to be freed', () => node.dimse.activeAssociations === 0, 8000);
      for (const h of hogs) {
        await h.ended;
        expect(pduTypes(h), 'A-ASSOCIATE-AC then A-ABORT').to.deep.equal([0x02, 0x07]);
        expect(await nodeDestroyed(h), 'the node let go of the quiet connection').to.equal(true);
      }
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
      const rows = (await auditRows(node, 'dimse.association')).filter((r) => r.actor === 'HOG');
      expect(rows).to.have.length(3);
      for (const r of rows) {
        expect(r.outcome).to.equal('failure');
        expect(detailsOf(r).endedBy).to.equal('idle-timeout');
      }
    });

    it('an association with traffic is not idle: C-ECHOs every 0.5 s keep it past the idle timeout', async () => {
      const p = await open(node.dicomPort);
      expect(await associate(p, 'BUSY')).to.deep.equal({ type: 'accept' });
      for (let id = 1; id <= 10; id++) {
        p.socket.write(echoRq(id));
        await sleep(500);
      }
      // Five seconds of traffic, idle timeout two: still associated, and every echo was answered.
      expect(pduTypes(p)).to.deep.equal([0x02, ...Array<number>(10).fill(0x04)]);
      expect(node.dimse.activeAssociations).to.equal(1);
      p.socket.write(RELEASE_RQ);
      await until('the release', () => node.dimse.activeAssociations === 0, 3000);
    });

    it('frees the slot at A-RELEASE-RQ, and destroys the connection after ARTIM when the peer never closes it', async () => {
      const p = await open(node.dicomPort);
      expect(await associate(p, 'LINGER')).to.deep.equal({ type: 'accept' });
      expect(node.dimse.activeAssociations).to.equal(1);
      p.socket.write(RELEASE_RQ);
      await until('the slot to be free', () => node.dimse.activeAssociations === 0, 500);
      expect(p.socket.destroyed || p.socket.readableEnded, 'the connection is still up right after the release').to.equal(false);
      await Promise.race([p.ended, sleep(4000)]);
      expect(await nodeDestroyed(p)).to.equal(true);
      // Freed once: the count did not go below zero when the connection closed after the release.
      expect(node.dimse.activeAssociations).to.equal(0);
      const row = (await auditRows(node, 'dimse.association')).find((r) => r.actor === 'LINGER');
      expect(row && detailsOf(row).endedBy).to.equal('release');
    });

    it('frees the slot when the peer aborts', async () => {
      const p = await open(node.dicomPort);
      expect(await associate(p, 'ABORTER')).to.deep.equal({ type: 'accept' });
      p.socket.write(ABORT);
      await until('the slot to be free', () => node.dimse.activeAssociations === 0, 2000);
      const row = (await auditRows(node, 'dimse.association')).find((r) => r.actor === 'ABORTER');
      expect(row && detailsOf(row).endedBy).to.equal('peer-abort');
    });

    it('aborts a second A-ASSOCIATE-RQ on one connection rather than taking a second slot', async () => {
      const p = await open(node.dicomPort);
      expect(await associate(p, 'TWICE')).to.deep.equal({ type: 'accept' });
      p.socket.write(associateRq('TWICE', 'RADIANT'));
      await Promise.race([p.ended, sleep(3000)]);
      expect(pduTypes(p), 'A-ASSOCIATE-AC then A-ABORT').to.deep.equal([0x02, 0x07]);
      await until('the slot to be free', () => node.dimse.activeAssociations === 0, 2000);
      expect(await nodeDestroyed(p)).to.equal(true);
      expect(node.dimse.activeAssociations).to.equal(0);
    });

    it('destroys a rejected connection the peer keeps open after the ARTIM timeout', async () => {
      const p = await open(node.dicomPort);
      const answer = await associate(p, 'WRONGCALLED', 'NOTRADIANT');
      expect(answer).to.deep.equal({ type: 'reject', result: 1, source: 1, reason: 7 });
      await Promise.race([p.ended, sleep(4000)]);
      expect(await nodeDestroyed(p)).to.equal(true);
      expect(node.dimse.activeAssociations).to.equal(0);
    });

    it('the global limit still counts right after all of the above: 3 accepted, the 4th rejected', async () => {
      const ps = await Promise.all([1, 2, 3, 4].map(() => open(node.dicomPort)));
      const answers = [];
      for (const [i, p] of ps.entries()) answers.push(await associate(p, `COUNT${i}`));
      expect(answers.slice(0, 3)).to.deep.equal([{ type: 'accept' }, { type: 'accept' }, { type: 'accept' }]);
      expect(answers[3]).to.deep.equal(LOCAL_LIMIT);
      const row = (await auditRows(node, 'dimse.association-rejected')).find((r) => r.actor === 'COUNT3');
      expect(row && detailsOf(row).reason).to.equal('global-limit');
      for (const p of ps.slice(0, 3)) p.socket.write(RELEASE_RQ);
      await until('the releases', () => node.dimse.activeAssociations === 0, 3000);
    });
  });

  describe('per-AE and per-address limits', () => {
    let node: TestNode;
    before(async () => {
      node = await startTestNode({
        DICOM_MAX_ASSOCIATIONS: '10',
        DICOM_MAX_ASSOCIATIONS_PER_AE: '2',
        DICOM_MAX_ASSOCIATIONS_PER_ADDRESS: '3',
        DICOM_ARTIM_TIMEOUT_SECONDS: '30',
      });
    });
    after(async () => node?.cleanup());

    it('rejects the third association of one calling AE (transient, local limit exceeded) while another AE gets in', async () => {
      const ps = await Promise.all([1, 2, 3].map(() => open(node.dicomPort, '127.0.0.3')));
      expect(await associate(ps[0]!, 'GREEDY')).to.deep.equal({ type: 'accept' });
      expect(await associate(ps[1]!, 'GREEDY')).to.deep.equal({ type: 'accept' });
      expect(await associate(ps[2]!, 'GREEDY')).to.deep.equal(LOCAL_LIMIT);
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
      const rows = (await auditRows(node, 'dimse.association-rejected')).filter((r) => r.actor === 'GREEDY');
      expect(rows.map((r) => detailsOf(r).reason)).to.deep.equal(['ae-limit']);
    });

    it('rejects the fourth association from one address whatever its AE title, while another address gets in', async () => {
      const ps = await Promise.all([1, 2, 3, 4].map(() => open(node.dicomPort, '127.0.0.4')));
      const answers = [];
      for (const [i, p] of ps.entries()) answers.push(await associate(p, `HOST${i}`));
      expect(answers.slice(0, 3)).to.deep.equal([{ type: 'accept' }, { type: 'accept' }, { type: 'accept' }]);
      expect(answers[3]).to.deep.equal(LOCAL_LIMIT);
      const other = await open(node.dicomPort, '127.0.0.5');
      expect(await associate(other, 'HOST3')).to.deep.equal({ type: 'accept' });
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
      const row = (await auditRows(node, 'dimse.association-rejected')).find((r) => r.actor === 'HOST3');
      expect(row && detailsOf(row).reason).to.equal('address-limit');
    });

    it('destroys at once a connection from an address that already keeps its share of connections without an association', async () => {
      const waiting = await Promise.all([1, 2, 3].map(() => open(node.dicomPort, '127.0.0.6')));
      await sleep(200);
      const extra = await open(node.dicomPort, '127.0.0.6');
      await Promise.race([extra.ended, sleep(3000)]);
      expect(await nodeDestroyed(extra, 500), 'the connection over the share is dropped').to.equal(true);
      for (const p of waiting) expect(p.socket.readableEnded, 'the others wait for their ARTIM timeout').to.equal(false);
      // Other addresses are not affected.
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
    });
  });
});

describe('DICOM_ALLOWLIST defaults (MODE)', () => {
  const online = { MODE: 'online', DATABASE_URL: 'postgres://x@127.0.0.1/x', SECRET_KEY: 'k'.repeat(40), STORAGE_TYPE: 'local' };

  it('is on by default when MODE=online and off when offline', () => {
    expect(loadConfig(online, '/tmp').dicom.allowlist).to.equal(true);
    expect(loadConfig({}, '/tmp').dicom.allowlist).to.equal(false);
    expect(loadConfig({ MODE: 'offline' }, '/tmp').dicom.allowlist).to.equal(false);
    expect(loadConfig({ DICOM_ALLOWED_AES: 'MODALITY1' }, '/tmp').dicom.allowlist).to.equal(true);
  });

  it('an explicit DICOM_ALLOWLIST=false is honoured online, with a warning', () => {
    const warnings: string[] = [];
    const log = createLogger('warn', { destination: { write: (line: string) => void warnings.push(line) } });
    const offConfig = loadConfig({ ...online, DICOM_ALLOWLIST: 'false' }, '/tmp');
    expect(offConfig.dicom.allowlist).to.equal(false);
    // The database is never asked when the allowlist is off.
    const db = undefined as unknown as Parameters<typeof allowlist>[0]['db'];
    expect(allowlist({ db, config: offConfig, log })).to.equal(undefined);
    expect(warnings.join('\n')).to.match(/DICOM_ALLOWLIST=false with MODE=online/);

    warnings.length = 0;
    expect(allowlist({ db, config: loadConfig({ DICOM_ALLOWLIST: 'false' }, '/tmp'), log })).to.equal(undefined);
    expect(allowlist({ db, config: loadConfig(online, '/tmp'), log })).to.be.a('function');
    expect(warnings, 'no warning offline or with the allowlist on').to.deep.equal([]);
  });
});
