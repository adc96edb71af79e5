// SPDX-License-Identifier: Apache-2.0
// Which failures no retry can fix. Error classes declare it themselves (a `final` getter), and
// the retry loops ask only `isFinal`, never a list of classes or codes.
//
// Final: the request itself is wrong - a Datera 400 or 422 (DateraError), a claim or parameter
// the provisioner refuses, a credentials Secret that is missing, unreadable or incomplete
// (CredentialsError). Repeating it unchanged cannot succeed; the controller re-checks slowly and
// at once when the claim, its class, the templates or the Secret change.
// Everything else is retried with backoff: Datera 5xx, timeouts and connection failures (the
// client's own `retryable`), and also a Datera 401/404/409 or any Kubernetes API error met
// mid-operation, where the next attempt may find the world changed.

/** Implemented by error classes that can be final; read it through `isFinal`. */
export interface MaybeFinal {
  /** True when the request itself is wrong and repeating it unchanged cannot succeed. */
  readonly final: boolean;
}

/** Whether `err` is an Error that declares itself final (see the module comment). */
export function isFinal(err: unknown): boolean {
  return err instanceof Error && (err as Partial<MaybeFinal>).final === true;
}
