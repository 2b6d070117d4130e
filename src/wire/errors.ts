/** FabricError: how every refusal is answered (`{"Error":{"Code","Message"}}`), and the failure a progress or backup carries. */

/** FabricErrorError: a code of the catalogue (core/errors.ts) or of Service Fabric, and what went wrong. */
export interface FailureErrorWire {
  Code: string;
  Message: string;
}

/** The body of every error answer. */
export interface FabricErrorWire {
  Error: FailureErrorWire;
}

export function fabricError(code: string, message: string): FabricErrorWire {
  return { Error: { Code: code, Message: message } };
}

/** The error of a FabricError body, or undefined when `body` is not one. */
export function fabricErrorOf(body: unknown): Partial<FailureErrorWire> | undefined {
  if (body === null || typeof body !== 'object' || !('Error' in body)) return undefined;
  const e = (body as { Error: unknown }).Error;
  if (e === null || typeof e !== 'object') return undefined;
  const { Code, Message } = e as Record<string, unknown>;
  return { ...(typeof Code === 'string' ? { Code } : {}), ...(typeof Message === 'string' ? { Message } : {}) };
}
