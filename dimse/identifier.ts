import dimse from 'dcmjs-dimse';
import { readDataSet } from '../src/dicom/read-dataset.js';

/**
 * The elements of a data set received over DIMSE (a C-FIND identifier), decoded by the kernel
 * (src/dicom/read-dataset.ts) rather than by dcmjs-dimse's own dcmjs copy: that one reads text
 * with one TextDecoder chosen from the first value of (0008,0005), so ISO 2022 escapes ("\ISO 2022
 * IR 87" Japanese, IR 149 Korean) came through as raw escape sequences and nothing matched.
 *
 * dcmjs-dimse parses an incoming data set in Dataset's constructor (`_fromElementsBuffer`) and
 * keeps no bytes; the node's network layer never sees them. So the method is wrapped once, here,
 * to remember each received data set's bytes beside the Dataset (a WeakMap: they go with it).
 */

type DatasetT = InstanceType<typeof dimse.Dataset>;
type FromBuffer = (this: DatasetT, bytes: Buffer, transferSyntaxUid: string, options: unknown) => Record<string, unknown>;

const received = new WeakMap<DatasetT, { bytes: Buffer; transferSyntaxUid: string }>();
const proto = dimse.Dataset.prototype as unknown as { _fromElementsBuffer: FromBuffer };
const parse = proto._fromElementsBuffer;
proto._fromElementsBuffer = function (bytes, transferSyntaxUid, options) {
  received.set(this, { bytes, transferSyntaxUid });
  return parse.call(this, bytes, transferSyntaxUid, options);
};

export interface ReceivedElements {
  /** Naturalized elements (keyword names), text in Unicode. */
  elements: Record<string, unknown>;
  /** (0008,0005) as the peer sent it ([] when absent). */
  characterSets: string[];
}

/** The data set's elements, decoded per its Specific Character Set. */
export function receivedElements(dataset: DatasetT): ReceivedElements {
  const raw = received.get(dataset);
  // A Dataset built from elements (not from the network) has no bytes: its values are the caller's.
  if (!raw) return { elements: dataset.getElements() as Record<string, unknown>, characterSets: [] };
  return readDataSet(raw.bytes, raw.transferSyntaxUid);
}
