// This machine's energy, metered by a worker when the coordinator's assignment says so (one worker on each
// machine other than the coordinator's; docs/observability.md, "Workers on other machines").
import type { ObservabilityConfig } from '../observability/config.js';
import { EnergyMeter, energySources, machineId } from '../observability/power.js';
import type { JsonLog } from '../coordinator/log.js';

export class HostEnergy {
  private meter: EnergyMeter | null = null;
  private sampledMs = -Infinity;

  constructor(private readonly log: JsonLog) {}

  /** Starts or stops metering this machine, as the assignment says. */
  async set(on: boolean, config: ObservabilityConfig): Promise<void> {
    if (!on) return this.stop();
    if (this.meter) return;
    this.meter = await EnergyMeter.forMachine(config);
    this.meter.start(config.power_poll_s);
    this.log('info', 'metering this machine', { host: machineId() });
  }

  async stop(): Promise<void> {
    const meter = this.meter;
    this.meter = null;
    await meter?.stop();
  }

  /**
   * What a step report or a barrier says of this machine's energy: the meter's totals, sampled at most every
   * 0.5 s (the sample lands in a later report), or now and awaited when `fresh` (the final checkpoint).
   */
  async reading(fresh = false): Promise<{ hostEnergyJ: number; hostEnergySource: string }> {
    if (!this.meter) return { hostEnergyJ: 0, hostEnergySource: '' };
    if (fresh || performance.now() - this.sampledMs >= 500) {
      this.sampledMs = performance.now();
      const sampled = this.meter.sample();
      if (fresh) await sampled;
    }
    const totals = this.meter.totals();
    return { hostEnergyJ: totals.energy_j, hostEnergySource: energySources(totals) };
  }
}
