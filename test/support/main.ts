import { Writable } from 'node:stream';
import { main } from '../../src/main.js';

function sink(): { stream: Writable; text: () => string } {
  let data = '';
  return {
    stream: new Writable({
      write(chunk, _encoding, callback) {
        data += chunk.toString();
        callback();
      },
    }),
    text: () => data,
  };
}

/** Runs the CLI in-process (no build needed), capturing stdout, stderr and the exit code. */
export async function runMain(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'rke-ts', ...args], { env, stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
