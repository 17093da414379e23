/** What route handlers are given: the controller and daemon facts, nothing global. */
import type { Controller } from '../controller/types.js';
import type { EventBroker } from './events.js';
import type { HostFacts } from './render-system.js';

export interface DaemonFacts {
  pid: number;
  rootDir: string;
  execRoot: string;
}

export interface ApiDeps {
  controller: Controller;
  /** cnm's version string (Server header, /version). */
  version: string;
  daemon: DaemonFacts;
  host: HostFacts;
  events: EventBroker;
}
