import { createRemoteNode } from '../../src/catalog/remote-nodes.js';
import type { Db } from '../../src/db/connection.js';
import { createRule } from '../../src/forwarding/rules.js';
import { fakeEndpoint, okReply } from './fake-openai.js';

/**
 * What the tests and benches of the AI loop share: the stand-in model's answer (one nodule with a
 * box on the second image sent) and a PACS that receives the AI results (an "AI results"
 * forwarding rule to a DICOM node).
 */

type Box2d = [number, number, number, number];

/** The model's answer in the findings schema: one finding with `box_2d` (0–1000) on image 2. */
export function noduleAnswer(box2d: Box2d) {
  return {
    findings: [
      {
        description: 'Small rounded opacity, possibly a nodule.',
        anatomical_location: 'right upper lobe',
        laterality: 'right',
        category: 'abnormal',
        severity: 'mild',
        confidence: 0.6,
        image_numbers: [2],
        recommendation: 'Follow-up CT may be considered.',
        region: { image_number: 2, box_2d: box2d },
      },
    ],
    measurements: [],
    impression: 'Possible small nodule in the right upper lobe.',
    comparison_with_prior: '',
    technical_limitations: '',
  };
}

/** The review tests' answer: the nodule (box on image 2) and a box-less finding on image 3. */
export function noduleAndAtelectasisAnswer() {
  const answer = noduleAnswer([300, 300, 600, 600]);
  return {
    ...answer,
    findings: [
      ...answer.findings,
      {
        description: 'Linear density at the left base, possibly atelectasis.',
        anatomical_location: 'left lower lobe',
        laterality: 'left',
        category: 'abnormal',
        severity: 'mild',
        confidence: 0.4,
        image_numbers: [3],
        recommendation: 'Clinical correlation.',
        region: null,
      },
    ],
  };
}

/** A stand-in OpenAI-compatible endpoint that answers every request at once with `answer`. */
/**
 * A node that analyses every study through a stand-in OpenAI-compatible endpoint, quickly: the
 * model is unvalidated (its output is held back unless allowed), a study is stable after 1 s,
 * 4 slices of 128² go out, jobs are polled every 100 ms. Tests add or override their own keys.
 */
export function autoAnalysisEnv(endpointUrl: string): Record<string, string> {
  return {
    MEDGEMMA_BACKEND: 'remote',
    MEDGEMMA_API_ENDPOINT: endpointUrl,
    MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true',
    AUTO_ANALYZE: 'all',
    STUDY_STABLE_SECONDS: '1',
    MEDGEMMA_MAX_SLICES: '4',
    ANALYSIS_IMAGE_SIZE: '128',
    JOB_POLL_MS: '100',
  };
}

export function answeringEndpoint(answer: unknown): ReturnType<typeof fakeEndpoint> {
  return fakeEndpoint((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(okReply(JSON.stringify(answer)));
    });
  });
}

/** Registers the DICOM node `aeTitle` at 127.0.0.1:`port` and a rule sending it every AI result. */
export async function forwardAiResultsTo(
  node: { db: Db; forwardingRules: { reload(): Promise<unknown> } },
  aeTitle: string,
  port: number,
): Promise<void> {
  const pacs = await createRemoteNode(node.db, {
    aeTitle,
    host: '127.0.0.1',
    port,
    tls: false,
    description: null,
    allowQueryRetrieve: false,
    stowUrl: null,
    stowAuthorization: null,
  });
  await createRule(node.db, { name: 'AI results', enabled: true, nodeId: pacs.id, match: { aiResults: true } });
  await node.forwardingRules.reload();
}
