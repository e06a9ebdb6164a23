// Separate network hosts on one machine, for the link-cut scenario: each worker slot gets a network
// namespace joined by a veth pair to a bridge in this one, where the coordinator listens. Cutting a link
// takes the bridge's end of a slot's veth down: that worker's packets stop, its sockets stay open, as when
// a cable or a switch port fails. Needs root and iproute2 (`ip`).
import { execFileSync } from 'node:child_process';

const SUBNET = '10.231'; // 10.231.N.0/24
let labs = 0; // names and subnets differ per lab: the kernel may still be tearing down the previous one's

export class LinkLab {
  private constructor(
    private readonly id: string,
    private readonly net: string,
    readonly slots: number,
  ) {}

  static create(slots: number): LinkLab {
    const n = (process.pid + labs++) % 250; // from this process's id too, so two runs do not collide
    const lab = new LinkLab(`rl${n}`, `${SUBNET}.${n}`, slots);
    lab.destroy(); // what a killed run may have left under these names
    try {
      lab.ip('link', 'add', lab.bridge, 'type', 'bridge');
      lab.ip('addr', 'add', `${lab.coordinatorHost}/24`, 'dev', lab.bridge);
      lab.ip('link', 'set', lab.bridge, 'up');
      for (let slot = 0; slot < slots; slot++) {
        const ns = lab.namespace(slot);
        lab.ip('netns', 'add', ns);
        lab.ip('link', 'add', lab.veth(slot), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        lab.ip('link', 'set', lab.veth(slot), 'master', lab.bridge, 'up');
        lab.ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${lab.workerHost(slot)}/24`, 'dev', 'eth0');
        lab.ip('netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up');
        lab.ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      }
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

  cut(slot: number): void {
    this.ip('link', 'set', this.veth(slot), 'down');
  }

  restore(slot: number): void {
    this.ip('link', 'set', this.veth(slot), 'up');
  }

  destroy(): void {
    for (let slot = 0; slot < this.slots; slot++) this.quietly('netns', 'del', this.namespace(slot)); // takes its veth pair
    this.quietly('link', 'del', this.bridge);
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
