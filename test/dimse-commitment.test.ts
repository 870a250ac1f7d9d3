import assert from 'node:assert/strict';
import dimse from 'dcmjs-dimse';
import { STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH, storageCommitmentService } from '../dimse/storage-commitment.js';
import type { AssociationContext, NActionResponse } from '../dimse/services.js';
import { createRemoteNode, findRemoteNodeByAe } from '../src/catalog/remote-nodes.js';
import { corpusDir } from './helpers/corpus.js';
import { storescu } from './helpers/dcmtk.js';
import { freePort, startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/** Storage Commitment Push Model SCP with a dcmjs-dimse Client as the SCU. */

const { Client, Dataset, Scp, Server } = dimse;
const { NActionRequest } = dimse.requests;
const { NEventReportResponse } = dimse.responses;
const IMPLICIT_LE = '1.2.840.10008.1.2';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';

type NEventReportRequestT = InstanceType<typeof dimse.requests.NEventReportRequest>;

interface Report {
  eventTypeId: number;
  elements: Record<string, unknown>;
}

/** N-ACTION on one association; the N-EVENT-REPORT received on it (if any) and the N-ACTION status. */
function requestCommitment(
  port: number,
  transactionUid: string,
  refs: Array<[string, string]>,
  opts: { actionTypeId?: number; lingerMs?: number } = {},
): Promise<{ actionStatus: number | undefined; report: Report | undefined }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const req = new NActionRequest(STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE, opts.actionTypeId ?? 1);
    req.setDataset(
      new Dataset(
        {
          TransactionUID: transactionUid,
          ReferencedSOPSequence: refs.map(([c, i]) => ({ ReferencedSOPClassUID: c, ReferencedSOPInstanceUID: i })),
        },
        IMPLICIT_LE,
      ),
    );
    let actionStatus: number | undefined;
    let report: Report | undefined;
    req.on('response', (r: { getStatus(): number }) => (actionStatus = r.getStatus()));
    client.addRequest(req);
    client.on('nEventReportRequest', (request: NEventReportRequestT, callback: (r: unknown) => void) => {
      report = { eventTypeId: request.getEventTypeId(), elements: request.getDataset()?.getElements() ?? {} };
      const response = NEventReportResponse.fromRequest(request);
      response.setStatus(0);
      callback(response);
    });
    client.on('networkError', (e: Error) => reject(e));
    client.on('closed', () => resolve({ actionStatus, report }));
    // The SCU keeps the association a while after the N-ACTION response, waiting for the report.
    client.send('127.0.0.1', port, 'COMMITSCU', 'RADIANT', { associationLingerTimeout: opts.lingerMs ?? 1000 });
  });
}

const sopsOf = (seq: unknown) =>
  ((seq as Array<Record<string, unknown>> | undefined) ?? []).map((i) => [
    i.ReferencedSOPClassUID,
    i.ReferencedSOPInstanceUID,
    i.FailureReason,
  ]);

onBothDatabases((dbName, env) => {
  describe(`Storage Commitment SCP (${dbName})`, function () {
    this.timeout(120_000);
    let node: TestNode;
    let stored: { sopClassUid: string; sopInstanceUid: string };

    before(async () => {
      node = await startTestNode(await env());
      const file = corpusDir('ct-series-chest-99')[0]!;
      const r = await storescu(node.dicomPort, [file.absPath]);
      assert.equal(r.code, 0, r.output);
      const row = (await node.db('instances').first('sop_class_uid', 'sop_instance_uid')) as {
        sop_class_uid: string;
        sop_instance_uid: string;
      };
      stored = { sopClassUid: row.sop_class_uid, sopInstanceUid: row.sop_instance_uid };
    });
    after(async () => node?.cleanup());

    it('N-ACTION then N-EVENT-REPORT on the same association: one stored, one unknown, one class conflict → event type 2', async () => {
      const unknown = '1.2.826.0.1.3680043.10.999.424242.1';
      const { actionStatus, report } = await requestCommitment(node.dicomPort, '1.2.826.0.1.3680043.10.999.777.1', [
        [stored.sopClassUid, stored.sopInstanceUid],
        [CT, unknown],
        [stored.sopClassUid === MR ? CT : MR, stored.sopInstanceUid],
      ]);
      assert.equal(actionStatus, 0);
      assert.ok(report, 'an N-EVENT-REPORT came on the association');
      assert.equal(report.eventTypeId, 2);
      assert.equal(report.elements.TransactionUID, '1.2.826.0.1.3680043.10.999.777.1');
      assert.deepEqual(sopsOf(report.elements.ReferencedSOPSequence), [[stored.sopClassUid, stored.sopInstanceUid, undefined]]);
      assert.deepEqual(sopsOf(report.elements.FailedSOPSequence), [
        [CT, unknown, 0x0112],
        [stored.sopClassUid === MR ? CT : MR, stored.sopInstanceUid, 0x0119],
      ]);
    });

    it('all stored → event type 1 without a FailedSOPSequence; a blob gone → failure 0x0112', async () => {
      const ok = await requestCommitment(node.dicomPort, '1.2.826.0.1.3680043.10.999.777.2', [[stored.sopClassUid, stored.sopInstanceUid]]);
      assert.equal(ok.report?.eventTypeId, 1);
      assert.equal(ok.report?.elements.FailedSOPSequence, undefined);

      const key = (
        (await node.db('instances').where({ sop_instance_uid: stored.sopInstanceUid }).first('storage_key')) as { storage_key: string }
      ).storage_key;
      const blob = await node.storage.get(key);
      const chunks: Buffer[] = [];
      for await (const c of blob) chunks.push(c as Buffer);
      await node.storage.delete(key);
      try {
        const gone = await requestCommitment(node.dicomPort, '1.2.826.0.1.3680043.10.999.777.3', [
          [stored.sopClassUid, stored.sopInstanceUid],
        ]);
        assert.equal(gone.report?.eventTypeId, 2);
        assert.deepEqual(sopsOf(gone.report?.elements.FailedSOPSequence), [[stored.sopClassUid, stored.sopInstanceUid, 0x0112]]);
      } finally {
        const { Readable } = await import('node:stream');
        await node.storage.put(key, Readable.from([Buffer.concat(chunks)]));
      }
    });

    it('an N-ACTION with another action type is refused (0x0123)', async () => {
      const r = await requestCommitment(node.dicomPort, '1.2.826.0.1.3680043.10.999.777.4', [[stored.sopClassUid, stored.sopInstanceUid]], {
        actionTypeId: 2,
        lingerMs: 200,
      });
      assert.equal(r.actionStatus, 0x0123);
      assert.equal(r.report, undefined);
    });

    it('the association is over: the report goes on a new association to the requester (remote_nodes)', async () => {
      const port = await freePort();
      const received: Array<{ report: Report; providerRole: boolean | undefined; calling: string }> = [];
      let roleOfContext: boolean | undefined;
      class ReceiverScp extends Scp {
        private calling = '';
        override associationRequested(association: InstanceType<typeof dimse.association.Association>): void {
          for (const { id } of association.getPresentationContexts()) {
            const ctx = association.getPresentationContext(id);
            if (ctx.getAbstractSyntaxUid() === STORAGE_COMMITMENT_PUSH) roleOfContext = ctx.getProviderRole();
            ctx.setResult(dimse.constants.PresentationContextResult.Accept, IMPLICIT_LE);
          }
          this.sendAssociationAccept();
          this.calling = association.getCallingAeTitle().trim();
        }
        override associationReleaseRequested(): void {
          this.sendAssociationReleaseResponse();
        }
        override nEventReportRequest(
          request: NEventReportRequestT,
          callback: (r: InstanceType<typeof NEventReportResponse>) => void,
        ): void {
          received.push({
            report: { eventTypeId: request.getEventTypeId(), elements: request.getDataset()?.getElements() ?? {} },
            providerRole: roleOfContext,
            calling: this.calling,
          });
          const response = NEventReportResponse.fromRequest(request);
          response.setStatus(0);
          callback(response);
        }
      }
      const server = new Server(ReceiverScp);
      server.listen(port);
      try {
        await createRemoteNode(node.db, {
          aeTitle: 'COMMITSCU',
          host: '127.0.0.1',
          port,
          tls: false,
          description: null,
          allowQueryRetrieve: false,
          stowUrl: null,
        });
        const service = storageCommitmentService({
          db: node.db,
          storage: node.storage,
          aeTitle: 'RADIANT',
          log: node.log,
          audit: node.audit,
          findRemoteNode: (ae) => findRemoteNodeByAe(node.db, ae),
        });
        const ctx = {
          callingAeTitle: 'COMMITSCU',
          calledAeTitle: 'RADIANT',
          peer: '127.0.0.1:1',
          peerAddress: '127.0.0.1',
          closed: Promise.resolve(),
        } as unknown as AssociationContext;
        const req = new NActionRequest(STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE, 1);
        req.setDataset(
          new Dataset(
            {
              TransactionUID: '1.2.826.0.1.3680043.10.999.777.5',
              ReferencedSOPSequence: [{ ReferencedSOPClassUID: stored.sopClassUid, ReferencedSOPInstanceUID: stored.sopInstanceUid }],
            },
            IMPLICIT_LE,
          ),
        );
        const responses: NActionResponse[] = [];
        // The association is already over when the N-ACTION is handled.
        await Promise.resolve();
        service.nAction(ctx, req, (r) => responses.push(...(Array.isArray(r) ? r : [r])));
        const deadline = Date.now() + 10_000;
        while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(responses[0]?.getStatus(), 0);
        assert.equal(received.length, 1);
        assert.equal(received[0]!.calling, 'RADIANT');
        assert.equal(received[0]!.providerRole, true, 'SCP/SCU role selection: the node is the SCP');
        assert.equal(received[0]!.report.eventTypeId, 1);
        assert.equal(received[0]!.report.elements.TransactionUID, '1.2.826.0.1.3680043.10.999.777.5');
      } finally {
        server.close();
      }
    });
  });
});
