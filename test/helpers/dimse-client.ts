import dimse from 'dcmjs-dimse';
import { runTool, type ToolResult } from './dcmtk.js';

/** C-FIND peers for tests and the bench: DCMTK findscu (text output parsed) and a dcmjs-dimse Client. */

export interface FindAnswer {
  status: string;
  /** Tag `gggg,eeee` (lower-case hex) → value as findscu prints it, padding trimmed; '' when empty. */
  elements: Record<string, string>;
}

export interface FindscuResult {
  tool: ToolResult;
  answers: FindAnswer[];
  /** The final response as findscu names it ("Success", "Cancel: …", "Error: …", "Failed: …"). */
  final: string | undefined;
}

/** findscu's text output: one block per pending response (printed at info level). */
export function parseFindscu(output: string): { answers: FindAnswer[]; final: string | undefined } {
  const answers: FindAnswer[] = [];
  const blocks = output.split(/Find Response: \d+ \(/).slice(1);
  for (const b of blocks) {
    const status = b.slice(0, b.indexOf(')'));
    const elements: Record<string, string> = {};
    for (const line of b.split('\n')) {
      const m = /\(([0-9a-f]{4}),([0-9a-f]{4})\) [A-Z]{2} (?:\[(.*)\]|\(no value available\)|(\S+))/.exec(line);
      if (m) elements[`${m[1]},${m[2]}`] = (m[3] ?? m[4] ?? '').replace(/[ \0]+$/, '');
    }
    answers.push({ status, elements });
  }
  const final =
    /Received Final Find Response \(([^)]*)\)/.exec(output)?.[1] ?? (/Final Find Response/.test(output) ? 'Success' : undefined);
  return { answers, final };
}

export async function findscu(port: number, args: string[], aec = 'RADIANT'): Promise<FindscuResult> {
  const tool = await runTool('findscu', ['-v', '-aet', 'TESTSCU', '-aec', aec, ...args, '127.0.0.1', String(port)]);
  const parsed = parseFindscu(tool.output);
  const m = /Received Final Find Response(?: \(([^)]*)\))?/.exec(tool.output);
  return { tool, answers: parsed.answers, final: m ? (m[1] ?? 'Success') : undefined };
}

export interface ClientFindResponse {
  status: number;
  errorComment: string | undefined;
  elements: Record<string, unknown> | undefined;
}

/** One C-FIND with a dcmjs-dimse Client: every response in order. */
export function clientFind(
  port: number,
  sopClassUid: string,
  elements: Record<string, unknown>,
  calledAe = 'RADIANT',
): Promise<ClientFindResponse[]> {
  return new Promise((resolve, reject) => {
    const client = new dimse.Client();
    const req = new dimse.requests.CFindRequest();
    req.setAffectedSopClassUid(sopClassUid);
    req.setDataset(new dimse.Dataset(elements, '1.2.840.10008.1.2'));
    const out: ClientFindResponse[] = [];
    req.on('response', (r: InstanceType<typeof dimse.responses.CFindResponse>) => {
      const ds = r.getDataset();
      out.push({
        status: r.getStatus(),
        errorComment: r.getErrorComment() || undefined,
        elements: ds ? ds.getElements() : undefined,
      });
    });
    client.addRequest(req);
    client.on('networkError', (e: Error) => reject(e));
    client.on('associationRejected', () => reject(new Error('association rejected')));
    client.on('closed', () => resolve(out));
    client.send('127.0.0.1', port, 'TESTSCU', calledAe);
    // As DCMTK does (TCP_NODELAY): without it Nagle holds the client's small PDUs back.
    (client as unknown as { network?: { socket?: { setNoDelay(v: boolean): void } } }).network?.socket?.setNoDelay(true);
  });
}
