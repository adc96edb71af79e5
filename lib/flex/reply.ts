// SPDX-License-Identifier: Apache-2.0
// The one JSON object a call-out prints. kubelet merges stdout and stderr before parsing, so
// nothing else may ever reach either stream.

type ReplyStatus = 'Success' | 'Failure' | 'Not supported';

interface Capabilities {
  attach: boolean;
  fsGroup: boolean;
  requiresFSResize: boolean;
  selinuxRelabel: boolean;
  supportsMetrics: boolean;
}

export interface Reply {
  status: ReplyStatus;
  message?: string;
  /** attach, waitforattach */
  device?: string;
  /** getvolumename */
  volumeName?: string;
  /** isattached */
  attached?: boolean;
  /** init */
  capabilities?: Capabilities;
}

/** A failure whose message is fit for the Failure reply (and thus for pod events). No secrets. */
export class FlexError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlexError';
  }
}

export const success = (extra: Omit<Reply, 'status'> = {}): Reply => ({ status: 'Success', ...extra });
export const failure = (message: string): Reply => ({ status: 'Failure', message });
export const notSupported = (callout: string): Reply => ({ status: 'Not supported', message: `${callout} is not supported by datera/iscsi` });

/** Exit status kubelet expects: only a Failure is an error. */
export const exitCodeOf = (r: Reply): number => (r.status === 'Failure' ? 1 : 0);
