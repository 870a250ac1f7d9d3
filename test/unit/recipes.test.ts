import { expect } from 'chai';
import { findingsJsonSchema } from '../../src/analysis/findings-schema.js';
import { recipeSliceOrder, slicesForRecipe } from '../../src/analysis/slice-order.js';
import { ANSWER_RESERVE, checkContextBudget, contextBudget, IMAGE_WRAPPER_TOKENS } from '../../src/medgemma/context-budget.js';
import { EngineError } from '../../src/medgemma/engine.js';
import { projectorImageTokens } from '../../src/medgemma/model-identity.js';
import { chatRequestBody } from '../../src/medgemma/openai-chat.js';
import { RECIPES, recipeFor, recipeMessages, userText } from '../../src/medgemma/recipes.js';
import { SYSTEM_PROMPT } from '../../src/medgemma/safety.js';
import { describeSchema } from '../../src/medgemma/schema-text.js';

const schema = findingsJsonSchema({ maxFindings: 3, maxText: 100, imageCount: 3 });
const png = (n: number) => Buffer.from([0x89, 0x50, n]);

describe('unit: recipes per model family (src/medgemma/recipes.ts)', () => {
  it('the table: MedGemma 1.5 labelled slices, no system message, greedy; MedGemma 1 one image; generic', () => {
    expect(RECIPES['medgemma-1.5']).to.include({ systemMessage: false, layout: 'labelled', topK: 1, imageTokens: 256 });
    expect(RECIPES['medgemma-1']).to.include({ systemMessage: true, layout: 'text-first', maxImages: 1, topK: 1 });
    expect(RECIPES.generic).to.include({ systemMessage: true, layout: 'text-first', topK: undefined });
  });

  it('picks the recipe from MEDGEMMA_RECIPE, else from the known release or the remote model name', () => {
    expect(recipeFor('auto', 'MedGemma 1.5 4B-it').id).to.equal('medgemma-1.5');
    expect(recipeFor('auto', 'medgemma-1.5-4b-it').id).to.equal('medgemma-1.5');
    expect(recipeFor('auto', 'MedGemma 4B-it').id).to.equal('medgemma-1');
    expect(recipeFor('auto', 'MedGemma 27B-it (multimodal)').id).to.equal('medgemma-1');
    expect(recipeFor('auto', 'medgemma').id).to.equal('generic');
    expect(recipeFor('auto', undefined).id).to.equal('generic');
    expect(recipeFor('medgemma-1.5', undefined).id).to.equal('medgemma-1.5');
    expect(recipeFor('generic', 'MedGemma 1.5 4B-it').id).to.equal('generic');
  });

  it('MedGemma 1.5: instruction (safety text first), then image + "SLICE n" in order, then the question; no system message', () => {
    const m = recipeMessages(RECIPES['medgemma-1.5'], { instruction: 'Task: CT.', schema, imageCount: 3, volume: true });
    expect(m.systemPrompt).to.equal(null);
    expect(m.prompt.startsWith(SYSTEM_PROMPT)).to.equal(true);
    expect(m.prompt).to.include('Task: CT.');
    expect(m.imageLabels).to.deep.equal(['SLICE 1', 'SLICE 2', 'SLICE 3']);
    expect(m.question).to.match(/^\n\nBased on the visual evidence in the slices provided above/);
    expect(m.question).to.include(describeSchema(schema));
    expect(m.topK).to.equal(1);
    const body = chatRequestBody({ images: [png(1), png(2), png(3)], schema, ...m }, undefined, ['u1', 'u2', 'u3']);
    const messages = body.messages as Array<{ role: string; content: Array<{ type: string; text?: string; image_url?: { url: string } }> }>;
    expect(messages.map((x) => x.role)).to.deep.equal(['user']);
    const parts = messages[0]!.content.map((p) => (p.type === 'text' ? `T:${p.text!.slice(0, 8)}` : `I:${p.image_url!.url}`));
    expect(parts).to.deep.equal(['T:You are ', 'I:u1', 'T:SLICE 1', 'I:u2', 'T:SLICE 2', 'I:u3', 'T:SLICE 3', 'T:\n\nBased ']);
    expect(body).to.include({ temperature: 0, top_k: 1 });
    expect(recipeMessages(RECIPES['medgemma-1.5'], { instruction: 'x', schema, imageCount: 2, volume: false }).imageLabels).to.deep.equal([
      'IMAGE 1',
      'IMAGE 2',
    ]);
  });

  it('MedGemma 1 and generic: system message, then the text, then the images; the schema stated in the text', () => {
    for (const r of [RECIPES['medgemma-1'], RECIPES.generic]) {
      const m = recipeMessages(r, { instruction: 'Task: CR.', schema, imageCount: 1, volume: false });
      const body = chatRequestBody({ images: [png(1)], schema, ...m }, 'm', ['u1']);
      const messages = body.messages as Array<{ role: string; content: unknown }>;
      expect(messages[0]).to.deep.equal({ role: 'system', content: SYSTEM_PROMPT });
      const user = messages[1]!.content as Array<{ type: string; text?: string }>;
      expect(user.map((p) => p.type)).to.deep.equal(['text', 'image_url']);
      expect(user[0]!.text).to.match(/^Task: CR\.\nAnswer with one JSON object of this shape/);
      expect(user[0]!.text).to.include('"confidence": number 0..1');
      expect(userText(m)).to.equal(user[0]!.text);
      if (r.id === 'generic') expect(body).not.to.have.property('top_k');
      else expect(body.top_k).to.equal(1);
    }
  });

  it('the schema in the prompt is the one the grammar enforces: confidence 0–1, image numbers, box_2d on 0–1000', () => {
    const text = describeSchema(schema);
    expect(text).to.include('"confidence": number 0..1');
    expect(text).to.include('"image_numbers": [integer 1..3]');
    expect(text).to.include('"box_2d": [integer 0..1000 ×4]');
    expect(text).to.include('"laterality": "left"|"right"');
    expect(text).to.include('"region": null | {"image_number"');
    expect(text).not.to.match(/percent|low, moderate|x_min/);
    expect(SYSTEM_PROMPT).not.to.match(/low, moderate or high/);
    expect(SYSTEM_PROMPT).to.include('confidence between 0 and 1');
  });
});

describe('unit: slice order and selection (src/analysis/slice-order.ts)', () => {
  it('orders by InstanceNumber ascending, frames by number, unnumbered last in their volume order', () => {
    // Volume order (ascending along the normal) is feet to head; the scanner numbered head to feet.
    const vol = [
      { id: 'feet', instanceNumber: 3, frameNumber: 1 },
      { id: 'mid', instanceNumber: 2, frameNumber: 1 },
      { id: 'x', frameNumber: 1 },
      { id: 'head', instanceNumber: 1, frameNumber: 1 },
      { id: 'y', frameNumber: 1 },
    ];
    expect(recipeSliceOrder(vol).map((s) => s.id)).to.deep.equal(['head', 'mid', 'feet', 'x', 'y']);
    const frames = [3, 1, 2].map((f) => ({ instanceNumber: 7, frameNumber: f }));
    expect(recipeSliceOrder(frames).map((s) => s.frameNumber)).to.deep.equal([1, 2, 3]);
  });
  it('a one-image recipe gets the middle slice of a volume, the first of separate images', () => {
    expect(slicesForRecipe([1, 2, 3, 4, 5], 1, true)).to.deep.equal([3]);
    expect(slicesForRecipe([1, 2], 1, false)).to.deep.equal([1, 2]);
    expect(slicesForRecipe([1, 2, 3], 85, true)).to.deep.equal([1, 2, 3]);
  });
});

describe('unit: context budget (src/medgemma/context-budget.ts)', () => {
  it('a Gemma 3 projector: (image_size / patch_size / 4)² tokens per image, MedGemma 256', () => {
    expect(projectorImageTokens('gemma3', 896, 14)).to.equal(256);
    expect(projectorImageTokens('gemma3', 32, 4)).to.equal(4);
    expect(projectorImageTokens('gemma3', 896, 14, 2)).to.equal(1024);
    expect(projectorImageTokens('llava', 896, 14)).to.equal(undefined);
  });
  it('85 slices fit the default 32768; at 16384 a clear too_large error naming MEDGEMMA_MAX_SLICES before any call', () => {
    const b = { images: 85, imageTokens: 256, textChars: 6000, maxTokens: 4096, contextTokens: 32768 };
    const ok = checkContextBudget(b);
    expect(ok.promptTokens).to.equal(85 * (256 + IMAGE_WRAPPER_TOKENS) + 2000);
    expect(ok.answerTokens).to.equal(ANSWER_RESERVE);
    let err: unknown;
    try {
      checkContextBudget({ ...b, contextTokens: 16384 });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(EngineError);
    expect((err as EngineError).kind).to.equal('too_large');
    expect((err as EngineError).retryable).to.equal(false);
    const fit = contextBudget({ ...b, contextTokens: 16384 }).maxImages;
    expect((err as EngineError).message).to.include(`MEDGEMMA_MAX_SLICES to ${fit} or less`);
    expect(() => checkContextBudget({ ...b, images: fit, contextTokens: 16384 })).not.to.throw();
    expect(() => checkContextBudget({ ...b, images: fit + 1, contextTokens: 16384 })).to.throw(EngineError);
  });
  it('a short answer limit reserves only that much', () => {
    expect(contextBudget({ images: 0, imageTokens: 256, textChars: 0, maxTokens: 100, contextTokens: 1000 }).answerTokens).to.equal(100);
  });
});
