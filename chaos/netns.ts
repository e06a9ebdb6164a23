// Separate network hosts on one machine, for the link-cut scenario and the multi-host test: each worker
// slot gets a network namespace joined by a veth pair to a bridge in this one. The coordinator listens on
// the bridge itself, or, with `coordinatorNamespace`, on a namespace of its own joined to the bridge the
// same way, so that no process of the job shares a network stack with another. Cutting a link takes the
// bridge's end of a slot's veth down: that worker's packets stop, its sockets stay open, as when a cable
// or a switch port fails. Needs root and iproute2 (`ip`).
import { execFileSync } from 'node:child_process';

const SUBNET = '10.231'; // 10.231.N.0/24
let labs = 0; // names and subnets differ per lab: the kernel may still be tearing down the previous one's

export class LinkLab {
  private constructor(
    private readonly id: string,
    private readonly net: string,
    readonly slots: number,
    private readonly coordinatorNamespace: boolean,
  ) {}

  static create(slots: number, o: { coordinatorNamespace?: boolean } = {}): LinkLab {
    const n = (process.pid + labs++) % 250; // from this process's id too, so two runs do not collide
    const lab = new LinkLab(`rl${n}`, `${SUBNET}.${n}`, slots, o.coordinatorNamespace ?? false);
    lab.destroy(); // what a killed run may have left under these names
    try {
      lab.ip('link', 'add', lab.bridge, 'type', 'bridge');
      if (!lab.coordinatorNamespace) lab.ip('addr', 'add', `${lab.coordinatorHost}/24`, 'dev', lab.bridge);
      lab.ip('link', 'set', lab.bridge, 'up');
      if (lab.coordinatorNamespace) lab.addHost(lab.coordinatorNs, lab.coordinatorVeth, lab.coordinatorHost);
      for (let slot = 0; slot < slots; slot++) lab.addHost(lab.namespace(slot), lab.veth(slot), lab.workerHost(slot));
    } catch (err) {
      lab.destroy();
      throw new Error(`cannot build the network namespaces (root and iproute2 needed): ${(err as Error).message}`);
    }
    return lab;
  }

  get coordinatorHost(): string {
    return `${this.net}.1`;
  }

  workerHost(slot: number): string {
    return `${this.net}.${10 + slot}`;
  }

  /** What runs a command inside slot's namespace, put in front of it. */
  inSlot(slot: number): string[] {
    return ['ip', 'netns', 'exec', this.namespace(slot)];
  }

  /** What runs a command on the coordinator's host, put in front of it: nothing when that is this namespace. */
  inCoordinator(): string[] {
    return this.coordinatorNamespace ? ['ip', 'netns', 'exec', this.coordinatorNs] : [];
  }

  cut(slot: number): void {
    this.ip('link', 'set', this.veth(slot), 'down');
  }

  restore(slot: number): void {
    this.ip('link', 'set', this.veth(slot), 'up');
  }

  destroy(): void {
    // Each veth pair goes first, by its own end here: a namespace whose name is deleted lives on while a
    // process or a socket still holds it, and its pair with it.
    for (let slot = 0; slot < this.slots; slot++) {
      this.quietly('link', 'del', this.veth(slot));
      this.quietly('netns', 'del', this.namespace(slot));
    }
    if (this.coordinatorNamespace) {
      this.quietly('link', 'del', this.coordinatorVeth);
      this.quietly('netns', 'del', this.coordinatorNs);
    }
    this.quietly('link', 'del', this.bridge);
  }

  /** A namespace whose eth0 (at `address`) is the far end of a veth pair on the bridge. */
  private addHost(ns: string, veth: string, address: string): void {
    this.ip('netns', 'add', ns);
    this.ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    this.ip('link', 'set', veth, 'master', this.bridge, 'up');
    this.ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    this.ip('netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up');
    this.ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  }

  private get bridge(): string {
    return `${this.id}br`;
  }

  private veth(slot: number): string {
    return `${this.id}v${slot}`;
  }

  private namespace(slot: number): string {
    return `${this.id}w${slot}`;
  }

  private get coordinatorVeth(): string {
    return `${this.id}vc`;
  }

  private get coordinatorNs(): string {
    return `${this.id}c`;
  }

  private ip(...args: string[]): void {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private quietly(...args: string[]): void {
    try {
      this.ip(...args);
    } catch {
      /* already gone */
    }
  }
}
