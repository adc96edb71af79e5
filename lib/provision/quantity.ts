// SPDX-License-Identifier: Apache-2.0
// Kubernetes resource quantities ("1Gi", "500M", "1.5Gi", "1e9") as byte counts, and the
// rounding to whole GiB that Datera volumes need. Pure functions, no I/O.
//
// Grammar (k8s.io/apimachinery resource.Quantity, restated):
//   quantity  = [sign] number [suffix]
//   number    = digits | digits "." [digits] | "." digits
//   suffix    = binary (Ki Mi Gi Ti Pi Ei) | decimal (n u m k M G T P E) | exponent ("e"|"E" [sign] digits)
// "1E" is one exa, "1E3" is one thousand; "1K" and "1 Gi" are not quantities.

/** One GiB in bytes. */
export const GIB = 1n << 30n;

/** Largest byte count parseQuantity returns: int64, the range of Kubernetes' Quantity.Value(). */
const MAX_QUANTITY_BYTES = (1n << 63n) - 1n;

const QUANTITY_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+)|([numkMGTPE]))?$/;

const DECIMAL_EXPONENT: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_EXPONENT: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Ti: 40, Gi: 30, Pi: 50, Ei: 60 };

/**
 * Bytes denoted by a Kubernetes quantity string, rounded up to a whole byte (as Quantity.Value()
 * does: "500m" is 1). Returns undefined for anything that is not a quantity, for negative
 * quantities (a size cannot be negative) and for values above int64 (MAX_QUANTITY_BYTES).
 * No whitespace is tolerated, as in Kubernetes.
 */
export function parseQuantity(q: string): bigint | undefined {
  if (typeof q !== 'string') return undefined;
  const m = QUANTITY_RE.exec(q);
  if (!m) return undefined;
  const [, sign = '', number = '', binary, exponent, decimal] = m;

  const dot = number.indexOf('.');
  const intDigits = dot < 0 ? number : number.slice(0, dot);
  const fracDigits = dot < 0 ? '' : number.slice(dot + 1);
  const mantissa = BigInt((intDigits + fracDigits) || '0');
  if (mantissa === 0n) return 0n;
  if (sign === '-') return undefined;

  // value = mantissa * 2^exp2 * 10^exp10
  const exp2 = binary ? (BINARY_EXPONENT[binary] ?? 0) : 0;
  let exp10 = -fracDigits.length;
  if (exponent !== undefined) {
    const e = Number(exponent);
    // Beyond this the value is either far above int64 or far below one byte; keep the arithmetic small.
    if (e > 1000) return undefined;
    exp10 += Math.max(e, -1000);
  } else if (decimal) {
    exp10 += DECIMAL_EXPONENT[decimal] ?? 0;
  }

  const scaled = mantissa << BigInt(exp2);
  let bytes: bigint;
  if (exp10 >= 0) {
    if (exp10 > 40) return undefined; // mantissa >= 1, so the value exceeds int64
    bytes = scaled * 10n ** BigInt(exp10);
  } else {
    const digits = scaled.toString().length;
    if (-exp10 > digits) {
      bytes = 1n; // 0 < value < 1 byte: rounds up to one byte
    } else {
      const divisor = 10n ** BigInt(-exp10);
      bytes = (scaled + divisor - 1n) / divisor;
    }
  }
  return bytes > MAX_QUANTITY_BYTES ? undefined : bytes;
}

/** Whole GiB needed to hold `bytes` (rounded up), at least 1. `bytes` must be >= 0. */
export function bytesToGiBCeil(bytes: bigint): bigint {
  const gib = (bytes + GIB - 1n) / GIB;
  return gib < 1n ? 1n : gib;
}

/** Whole GiB that fit in `bytes` (rounded down); may be 0. */
export function bytesToGiBFloor(bytes: bigint): bigint {
  return bytes / GIB;
}
