import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageLogTimes } from '../../bench/ai-bench.js';
import { f32ToF16, GgmlType, kv, writeGguf, writeGgufStreamed } from '../../fixtures/gguf-writer.js';
import { MEDGEMMA_4B_IMAGE_TOKENS, medgemma4bTextMetadata, medgemmaVocabulary } from '../../fixtures/medgemma-shapes.js';

describe('streamed GGUF writer and the medgemma-4b-shapes preset', () => {
  it('writes the same bytes as the in-memory writer, chunk by chunk', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-gguf-'));
    try {
      const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i / 7 - 1);
      const b = Float32Array.from({ length: 9 }, (_, i) => i * 0.25);
      const meta = { 'general.architecture': kv.str('test'), 'test.n': kv.u32(3) };
      const whole = path.join(dir, 'whole.gguf');
      const streamed = path.join(dir, 'streamed.gguf');
      const n = writeGguf(whole, meta, [
        { name: 'a', shape: [3, 5], type: GgmlType.F16, data: a },
        { name: 'b', shape: [9], type: GgmlType.F32, data: b },
      ]);
      const cursor = (src: Float32Array) => {
        let at = 0;
        return (out: Uint16Array | Float32Array) => {
          for (let i = 0; i < out.length; i++) out[i] = out instanceof Uint16Array ? f32ToF16(src[at + i]!) : src[at + i]!;
          at += out.length;
        };
      };
      const m = writeGgufStreamed(streamed, meta, [
        { name: 'a', shape: [3, 5], type: GgmlType.F16, fill: cursor(a) },
        { name: 'b', shape: [9], type: GgmlType.F32, fill: cursor(b) },
      ]);
      expect(m).to.equal(n);
      expect(fs.readFileSync(streamed).equals(fs.readFileSync(whole))).to.equal(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has Gemma 3's 262144-token vocabulary with the special tokens at Gemma's ids, all distinct", () => {
    const v = medgemmaVocabulary();
    expect(v.tokens).to.have.length(262144);
    expect(v.scores).to.have.length(262144);
    expect(v.types).to.have.length(262144);
    expect(new Set(v.tokens).size).to.equal(262144);
    expect([v.tokens[1], v.tokens[2], v.tokens[105], v.tokens[106], v.tokens[255999], v.tokens[256000]]).to.deep.equal([
      '<eos>',
      '<bos>',
      '<start_of_turn>',
      '<end_of_turn>',
      '<start_of_image>',
      '<end_of_image>',
    ]);
    expect(v.tokens).to.include.members(['<0x0A>', '\u2581the', 'ing']);
  });

  it("carries Gemma 3 4B's hyperparameters and 256 tokens per image", () => {
    const m = medgemma4bTextMetadata();
    const val = (k: string) => (m[k] as { value: unknown }).value;
    expect([
      val('gemma3.embedding_length'),
      val('gemma3.block_count'),
      val('gemma3.attention.head_count'),
      val('gemma3.attention.head_count_kv'),
      val('gemma3.attention.key_length'),
      val('gemma3.feed_forward_length'),
      val('gemma3.attention.sliding_window'),
      val('gemma3.rope.freq_base'),
      val('gemma3.rope.scaling.factor'),
    ]).to.deep.equal([2560, 34, 8, 4, 256, 10240, 1024, 1_000_000, 8]);
    expect(MEDGEMMA_4B_IMAGE_TOKENS).to.equal(256);
  });

  it("reads mtmd's per-image encode and prefill lines", () => {
    const t = imageLogTimes([
      'srv  process_chun: processing image...',
      'encoding image slice...',
      'image slice encoded in 41234 ms',
      'decoding image batch 1/2, n_tokens_batch = 128',
      'image decoded (batch 1/2) in 3000 ms',
      'image decoded (batch 2/2) in 2500 ms',
      'image slice encoded in 40000 ms',
      'image decoded (batch 1/1) in 5000 ms',
    ]);
    expect(t).to.deep.equal({ encodeMs: [41234, 40000], prefillMs: [5500, 5000] });
  });
});
