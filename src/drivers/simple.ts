/**
 * The two drivers with no data plane of their own:
 * - host: the sandbox shares the daemon's namespace (Docker's --network host);
 * - null: the sandbox keeps only its loopback (Docker's --network none).
 * Neither takes options, addresses or firewall rules; only one network of each may exist.
 */
import { InvalidParameterError } from '../errors.js';
import type { DriverNetwork, JoinResult, NetworkDriver, NetworkProgram } from './types.js';

type NoOptions = Record<string, never>;

abstract class PassiveDriver implements NetworkDriver<NoOptions, NoOptions> {
  abstract readonly name: string;
  readonly scope = 'local' as const;
  readonly needsIpam = false;

  parseNetworkOptions(raw: Record<string, string>): NoOptions {
    return this.rejectAll(raw);
  }

  parseEndpointOptions(raw: Record<string, string>): NoOptions {
    return this.rejectAll(raw);
  }

  private rejectAll(raw: Record<string, string>): NoOptions {
    const keys = Object.keys(raw).filter((k) => k.startsWith('com.docker.network.'));
    if (keys.length > 0) throw new InvalidParameterError(`the ${this.name} driver takes no options (got ${keys.join(', ')})`);
    return {};
  }

  validateNetwork(): void {}

  async createNetwork(): Promise<NetworkProgram> {
    return { driverState: {} };
  }

  async restoreNetwork(): Promise<NetworkProgram> {
    return { driverState: {} };
  }

  async deleteNetwork(): Promise<void> {}

  async join(): Promise<JoinResult> {
    return { driverState: {} };
  }

  async leave(): Promise<void> {}

  async endpointIntact(): Promise<boolean> {
    return true;
  }

  ownedLinks(_nets: DriverNetwork<NoOptions>[]): string[] {
    return [];
  }
}

export class HostDriver extends PassiveDriver {
  readonly name = 'host';
}

export class NullDriver extends PassiveDriver {
  readonly name = 'null';
}
