/**
 * A process that starts a supervised llama-server and prints its pid, then waits to be killed:
 * the parent a test SIGKILLs to leave an orphan behind.
 * Usage: node dist/test/helpers/llama-parent.js <model.gguf> <llama-server>
 */
import { LlamaServer } from '../../src/medgemma/llama-server.js';

const [model, serverPath] = process.argv.slice(2);
const server = new LlamaServer({ model: model!, serverPath: serverPath!, threads: 1, ctxSize: 512 });
await server.start();
process.stdout.write(`PID ${server.pid}\n`);
setInterval(() => undefined, 1 << 30);
