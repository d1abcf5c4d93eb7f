/**
 * Garbage collection tuned per data path.
 *
 * bin/rke-ts.js starts Node with a 4 MiB young generation, sized for a restore: the SSH packets
 * it queues for slow targets then die young instead of being promoted and waiting for a full
 * collection. An S3 upload creates few JavaScript objects per byte it moves, so with that size
 * scavenges are rare and its dead socket buffers pile up between them (+30–50 MiB peak RSS).
 * V8 posts a scavenge task once the young generation is `--minor-gc-task-trigger` percent full;
 * lowering it during an upload makes scavenges as frequent as with a 1 MiB young generation.
 * V8 reads the flag each time it considers posting that task, so it can change while running.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default. */
const DEFAULT_TRIGGER_PERCENT = 80;
/** Measured with `snapshot-save --s3`: 5% matches a 1 MiB young generation's peak RSS. */
const STREAMING_TRIGGER_PERCENT = 5;

let streams = 0;

/** Runs `work` with early scavenges; nested and concurrent calls share the setting. */
export async function withEarlyScavenges<T>(work: () => Promise<T>): Promise<T> {
  if (streams++ === 0) setFlagsFromString(`--minor-gc-task-trigger=${STREAMING_TRIGGER_PERCENT}`);
  try {
    return await work();
  } finally {
    if (--streams === 0) setFlagsFromString(`--minor-gc-task-trigger=${DEFAULT_TRIGGER_PERCENT}`);
  }
}
