// Business outcomes are values; exceptions are for bugs and outages.
import { errorDef } from '@sparkpay/protocol';

export interface Failure {
  ok: false;
  code: number;
  message: string;
}

export type Result<T> = ({ ok: true } & T) | Failure;

export function fail(code: number, message?: string): Failure {
  return { ok: false, code, message: message ?? errorDef(code).message };
}
