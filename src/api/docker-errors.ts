/**
 * Docker's words for errors on Docker's routes. The controller says "No such sandbox" (and the
 * /cnm/v1 routes keep that); where Docker's API speaks of containers — /containers/..., a network
 * connect or disconnect naming a Container — a missing one is `No such container: NAME`, as dockerd
 * says and as clients (the docker CLI, compose) match on.
 */
import { NoSuchSandboxError, NotFoundError } from '../errors.js';

export function asDockerError(err: unknown): unknown {
  if (err instanceof NoSuchSandboxError) return new NotFoundError(`No such container: ${err.ref}`, { cause: err });
  return err;
}
