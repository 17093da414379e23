/**
 * Typed errors that know the HTTP status Docker would answer with.
 * Every layer throws these; only the API layer turns them into responses.
 */
export abstract class CnmError extends Error {
  abstract readonly status: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** 400: the request is malformed or names something in an invalid way. */
export class InvalidParameterError extends CnmError {
  readonly status = 400;
}

/** 403: the request is well formed but forbidden in the current state (Docker uses 403 for these). */
export class ForbiddenError extends CnmError {
  readonly status = 403;
}

/** 404: the named object does not exist. */
export class NotFoundError extends CnmError {
  readonly status = 404;
}

/** 404 for a sandbox reference: the API words it per route (Docker's routes say "No such container"). */
export class NoSuchSandboxError extends NotFoundError {
  constructor(readonly ref: string) {
    super(`No such sandbox: ${ref}`);
  }
}

/** 409: a conflicting object exists (duplicate name). */
export class ConflictError extends CnmError {
  readonly status = 409;
}

/** 500: something below us (kernel, store) failed; the operation was rolled back. */
export class SystemError extends CnmError {
  readonly status = 500;
}

/** 503: the daemon is not ready (starting or shutting down). */
export class UnavailableError extends CnmError {
  readonly status = 503;
}

/** The store's compare-and-swap lost a race; callers retry or map it to 409. */
export class StoreConflictError extends CnmError {
  readonly status = 409;
  constructor(readonly key: string, message = `store conflict on ${key}`) {
    super(message);
  }
}

/** IPAM: no free address or pool left. Docker answers these with 403 ("no available IPv4 addresses"). */
export class IpamExhaustedError extends CnmError {
  readonly status = 403;
}

/** IPAM: a pool overlaps an existing pool. Docker: 403 "Pool overlaps with other one on this address space". */
export class PoolOverlapError extends CnmError {
  readonly status = 403;
}

/** IPAM: a requested static address is already allocated. Docker: 403 "Address already in use". */
export class AddressInUseError extends CnmError {
  readonly status = 403;
}

/** A kernel operation failed; carries the errno name when known (EEXIST, ENOENT, ...). */
export class KernelError extends CnmError {
  readonly status = 500;
  constructor(message: string, readonly errno?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function httpStatusOf(err: unknown): number {
  return err instanceof CnmError ? err.status : 500;
}

/** Collects errors from a best-effort teardown instead of stopping at the first one. */
export class TeardownErrors {
  private readonly errors: unknown[] = [];
  async attempt(what: string, fn: () => unknown | Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.errors.push(new SystemError(`${what}: ${errorMessage(err)}`, { cause: err }));
    }
  }
  get list(): readonly unknown[] {
    return this.errors;
  }
  throwIfAny(context: string): void {
    if (this.errors.length > 0) {
      throw new SystemError(`${context}: ${this.errors.map(errorMessage).join('; ')}`);
    }
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
