/**
 * Retry policy for every S3 request, plugged into the SDK as its retry strategy so that each
 * request (including each part of a multipart upload, whose bytes the SDK still holds) is
 * retried on its own. A whole upload can't be retried from here: its source is a one-shot stream.
 *
 * The SDK classifies the error; we retry what it calls TRANSIENT (5xx 500/502/503/504,
 * ECONNRESET, EPIPE, ETIMEDOUT, ECONNREFUSED, DNS hiccups, request timeouts) and THROTTLING
 * (503 SlowDown). Client errors (403, 404, bad request) are never retried.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** rke-tools uploads with up to 4 attempts (s3ServerRetries = 3 retries); same count here. */
export const S3_MAX_ATTEMPTS = 4;
/**
 * First retry after ~0.5 s, then 1 s, 2 s (exponential, "equal jitter"): long enough to ride
 * out a dropped connection, a load balancer swapping a backend or a short 503 SlowDown burst,
 * short enough that an endpoint that is really down fails in under 5 s instead of minutes.
 * The SDK's own default (100 ms base) retries too fast to survive any of those.
 */
export const S3_RETRY_BASE_DELAY_MS = 500;
/** Cap for a single wait, so a large attempt count can't stall for minutes. */
export const S3_RETRY_MAX_DELAY_MS = 8_000;

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: S3_MAX_ATTEMPTS,
  baseDelayMs: S3_RETRY_BASE_DELAY_MS,
  maxDelayMs: S3_RETRY_MAX_DELAY_MS,
};

type SdkRetryStrategy = Extract<NonNullable<S3ClientConfig['retryStrategy']>, { acquireInitialRetryToken: unknown }>;
type SdkRetryToken = Awaited<ReturnType<SdkRetryStrategy['acquireInitialRetryToken']>>;
type SdkRetryErrorInfo = Parameters<SdkRetryStrategy['refreshRetryTokenForRetry']>[1];

export interface RetryNotice {
  /** The attempt that failed, 1-based. */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  error: unknown;
}

class AttemptToken implements SdkRetryToken {
  constructor(
    private readonly retryCount: number,
    private readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.retryCount;
  }
  /** The SDK's retry middleware waits this long before the next attempt. */
  getRetryDelay(): number {
    return this.delayMs;
  }
}

export function backoffDelay(policy: RetryPolicy, retryNumber: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retryNumber);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function createRetryStrategy(
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (notice: RetryNotice) => void,
): SdkRetryStrategy {
  return {
    async acquireInitialRetryToken() {
      return new AttemptToken(0, 0);
    },
    async refreshRetryTokenForRetry(token: SdkRetryToken, errorInfo: SdkRetryErrorInfo) {
      const attempt = token.getRetryCount() + 1;
      const retryable = errorInfo.errorType === 'TRANSIENT' || errorInfo.errorType === 'THROTTLING';
      // Throwing tells the SDK to give up and surface the original error.
      if (!retryable || attempt >= policy.maxAttempts) throw new Error('no more S3 retries');
      let delayMs = backoffDelay(policy, attempt - 1);
      if (errorInfo.retryAfterHint instanceof Date) {
        const hinted = errorInfo.retryAfterHint.getTime() - Date.now();
        delayMs = Math.min(policy.maxDelayMs, Math.max(delayMs, hinted));
      }
      onRetry?.({ attempt, maxAttempts: policy.maxAttempts, delayMs, error: errorInfo.error });
      return new AttemptToken(attempt, delayMs);
    },
    recordSuccess() {},
  };
}
