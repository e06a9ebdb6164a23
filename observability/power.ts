// Power, energy and emissions. Meters read device power: GPUs through nvidia-smi (NVML), CPU packages
// through RAPL's powercap counters, or, where neither is readable, an estimate from the CPU's TDP and
// its utilisation, marked `estimated` wherever it shows. EnergyMeter integrates them over time,
// multiplies by the facility's PUE and by the grid's carbon intensity.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ObservabilityConfig } from './config.js';
import { carbonIntensity } from './carbon.js';

export type PowerSource = 'nvidia-smi' | 'rapl' | 'estimated';

/** One device over one sampling interval: its mean power and the energy it used (device level, no PUE). */
export interface DeviceReading {
  device: string; // gpu0, cpu-package-0, cpu
  source: PowerSource;
  watts: number;
  joules: number;
}

export interface PowerMeter {
  readonly source: PowerSource;
  /** Readings since the previous call (none on the first call, which sets the baseline); `now` in seconds. */
  sample(now: number): Promise<DeviceReading[]>;
}

/** CPU package energy from RAPL: top-level `intel-rapl:N` zones under the powercap root (psys left out, it overlaps). */
export class RaplMeter implements PowerMeter {
  readonly source = 'rapl';
  private last = new Map<string, { uj: number; t: number }>();
  private constructor(private readonly zones: Array<{ dir: string; device: string; maxUj: number }>) {}

  /** The meter when at least one zone's counter is readable, else null (no powercap, or root-only counters). */
  static open(root: string): RaplMeter | null {
    let entries: string[];
    try {
      entries = fs.readdirSync(root);
    } catch {
      return null;
    }
    const zones = [];
    for (const entry of entries.filter((e) => /^intel-rapl:\d+$/.test(e)).sort()) {
      const dir = path.join(root, entry);
      try {
        const name = fs.readFileSync(path.join(dir, 'name'), 'utf8').trim();
        if (name === 'psys') continue;
        readMicrojoules(path.join(dir, 'energy_uj'));
        const maxUj = readMicrojoules(path.join(dir, 'max_energy_range_uj'));
        zones.push({ dir, device: `cpu-${name}`, maxUj });
      } catch {
        continue; // unreadable (EACCES on kernels that restrict the counters to root)
      }
    }
    return zones.length > 0 ? new RaplMeter(zones) : null;
  }

  async sample(now: number): Promise<DeviceReading[]> {
    const readings: DeviceReading[] = [];
    for (const zone of this.zones) {
      const uj = readMicrojoules(path.join(zone.dir, 'energy_uj'));
      const prev = this.last.get(zone.dir);
      this.last.set(zone.dir, { uj, t: now });
      if (!prev || now <= prev.t) continue;
      // The counter wraps to zero after max_energy_range_uj.
      const delta = uj >= prev.uj ? uj - prev.uj : zone.maxUj - prev.uj + uj;
      const joules = delta / 1e6;
      readings.push({ device: zone.device, source: 'rapl', watts: joules / (now - prev.t), joules });
    }
    return readings;
  }
}

function readMicrojoules(file: string): number {
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!/^\d{1,20}$/.test(text)) throw new Error(`${file}: expected a counter in microjoules, got "${text.slice(0, 40)}"`);
  return Number(text);
}

const NVIDIA_SMI_ARGS = ['--query-gpu=index,power.draw', '--format=csv,noheader,nounits'];

function runNvidiaSmi(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { timeout: 10_000, maxBuffer: 1 << 16, encoding: 'utf8' }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
}

/** Parses `index, value` lines; fields nvidia-smi cannot read ("[N/A]") are left out. */
export function parseNvidiaSmi(text: string): Array<{ index: number; value: string }> {
  const rows = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const comma = line.indexOf(',');
    const index = Number(line.slice(0, comma).trim());
    const value = line.slice(comma + 1).trim();
    if (comma < 0 || !Number.isInteger(index)) throw new Error(`unexpected nvidia-smi line: "${line.slice(0, 80)}"`);
    if (value.startsWith('[')) continue;
    rows.push({ index, value });
  }
  return rows;
}

/** GPU power per GPU from nvidia-smi, integrated by the trapezoid rule between polls. */
export class NvidiaSmiMeter implements PowerMeter {
  readonly source = 'nvidia-smi';
  private last = new Map<number, { watts: number; t: number }>();
  private constructor(
    private readonly command: string,
    readonly gpuNames: string[],
  ) {}

  /** The meter when nvidia-smi runs and lists at least one GPU, else null. */
  static async open(command: string): Promise<NvidiaSmiMeter | null> {
    try {
      const names = parseNvidiaSmi(await runNvidiaSmi(command, ['--query-gpu=index,name', '--format=csv,noheader']));
      return names.length > 0
        ? new NvidiaSmiMeter(
            command,
            names.map((n) => n.value),
          )
        : null;
    } catch {
      return null;
    }
  }

  async sample(now: number): Promise<DeviceReading[]> {
    const readings: DeviceReading[] = [];
    for (const { index, value } of parseNvidiaSmi(await runNvidiaSmi(this.command, NVIDIA_SMI_ARGS))) {
      const watts = Number(value);
      if (!Number.isFinite(watts) || watts < 0) throw new Error(`nvidia-smi power.draw of GPU ${index} is "${value}"`);
      const prev = this.last.get(index);
      this.last.set(index, { watts, t: now });
      if (!prev || now <= prev.t) continue;
      readings.push({ device: `gpu${index}`, source: 'nvidia-smi', watts, joules: ((prev.watts + watts) / 2) * (now - prev.t) });
    }
    return readings;
  }
}

type CpuTimes = Array<{ times: { user: number; nice: number; sys: number; idle: number; irq: number } }>;

/** No readable counter: the CPU's TDP × the machine's utilisation over the interval. An estimate. */
export class CpuEstimateMeter implements PowerMeter {
  readonly source = 'estimated';
  private last: { busy: number; total: number; t: number } | null = null;
  constructor(
    readonly tdpWatts: number,
    private readonly readTimes: () => CpuTimes = os.cpus,
  ) {}

  async sample(now: number): Promise<DeviceReading[]> {
    let busy = 0;
    let total = 0;
    for (const { times } of this.readTimes()) {
      const all = times.user + times.nice + times.sys + times.idle + times.irq;
      total += all;
      busy += all - times.idle;
    }
    const prev = this.last;
    this.last = { busy, total, t: now };
    if (!prev || now <= prev.t || total <= prev.total) return [];
    const utilisation = Math.min(1, Math.max(0, (busy - prev.busy) / (total - prev.total)));
    const watts = this.tdpWatts * utilisation;
    return [{ device: 'cpu', source: 'estimated', watts, joules: watts * (now - prev.t) }];
  }
}

/**
 * TDP for the estimate when the config gives none: 10 W per logical core, about a desktop part's share
 * (a 16-core, 170 W Ryzen 9 9950X is 10.6 W/core); server parts run lower per core. An estimate.
 */
export const CPU_TDP_WATTS_PER_CORE = 10;

export interface EnergyTotals {
  energy_j: number; // facility energy: device energy × PUE
  energy_kwh: number;
  emissions_g: number; // g CO2e: energy_kwh × carbon intensity
  power_w: number; // device power of the latest interval (no PUE)
  estimated: boolean; // some device's figure is an estimate
  pue: number;
  carbon_intensity_g_per_kwh: number;
  carbon_source: string;
  devices: Array<{ device: string; source: PowerSource; watts: number; energy_j: number }>;
}

export interface EnergyMeterOptions {
  pue: number;
  carbonIntensity: number; // g CO2e per kWh
  carbonSource?: string;
  now?: () => number; // seconds
}

/**
 * The machine a process runs on, as energy accounting sees it: RINGLET_HOST_ID when set (containers on one
 * node share its meters, so they should share an id; tests pretend to be other machines), else the hostname.
 */
export function machineId(): string {
  return process.env.RINGLET_HOST_ID || os.hostname();
}

/** "rapl", "nvidia-smi", "estimated", or several joined by "+": how a machine's totals were measured. */
export function energySources(t: EnergyTotals): string {
  return [...new Set(t.devices.map((d) => d.source))].sort().join('+') || (t.estimated ? 'estimated' : 'none');
}

/** Integrates the meters' readings; one sample at a time, on demand or on an interval. */
export class EnergyMeter {
  private readonly devices = new Map<string, { device: string; source: PowerSource; watts: number; joules: number }>();
  private readonly listeners: Array<(readings: DeviceReading[], totals: EnergyTotals) => void> = [];
  private pending: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(
    private readonly meters: PowerMeter[],
    private readonly options: EnergyMeterOptions,
  ) {
    this.now = options.now ?? (() => performance.now() / 1000);
  }

  /** Meters for this machine: nvidia-smi GPUs (unless off), RAPL where readable, else the CPU estimate. */
  static async forMachine(config: ObservabilityConfig, options: { now?: () => number } = {}): Promise<EnergyMeter> {
    const carbon = carbonIntensity(config.carbon_region, config.carbon_intensity_g_per_kwh);
    const meters: PowerMeter[] = [];
    const gpu = config.gpu_power === 'off' ? null : await NvidiaSmiMeter.open(config.nvidia_smi);
    if (gpu) meters.push(gpu);
    const rapl = RaplMeter.open(config.powercap_root);
    meters.push(rapl ?? new CpuEstimateMeter(config.cpu_tdp_watts ?? CPU_TDP_WATTS_PER_CORE * os.cpus().length));
    return new EnergyMeter(meters, {
      pue: config.pue,
      carbonIntensity: carbon.gPerKwh,
      carbonSource: `${carbon.source} (${carbon.region})`,
      now: options.now,
    });
  }

  get gpuNames(): string[] {
    return this.meters.flatMap((m) => (m instanceof NvidiaSmiMeter ? m.gpuNames : []));
  }

  /** How this machine's power is read, sorted: what the metrics' `source` labels will say. */
  get sources(): PowerSource[] {
    return [...new Set(this.meters.map((m) => m.source))].sort();
  }

  onSample(listener: (readings: DeviceReading[], totals: EnergyTotals) => void): void {
    this.listeners.push(listener);
  }

  /** Reads every meter once. A meter that fails (nvidia-smi gone away) is skipped for this sample. */
  sample(): Promise<void> {
    this.pending = this.pending.then(async () => {
      const t = this.now();
      const readings: DeviceReading[] = [];
      for (const meter of this.meters) {
        try {
          readings.push(...(await meter.sample(t)));
        } catch {
          continue;
        }
      }
      for (const r of readings) {
        const d = this.devices.get(r.device) ?? { device: r.device, source: r.source, watts: 0, joules: 0 };
        d.watts = r.watts;
        d.joules += r.joules;
        this.devices.set(r.device, d);
      }
      const totals = this.totals();
      for (const listener of this.listeners) listener(readings, totals);
    });
    return this.pending;
  }

  start(intervalS: number): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), intervalS * 1000);
    this.timer.unref();
  }

  /** Stops the interval and takes a last sample, so the totals run to now. */
  async stop(): Promise<EnergyTotals> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sample();
    return this.totals();
  }

  totals(): EnergyTotals {
    const devices = [...this.devices.values()].map((d) => ({
      device: d.device,
      source: d.source,
      watts: d.watts,
      energy_j: d.joules * this.options.pue,
    }));
    const energy_j = devices.reduce((s, d) => s + d.energy_j, 0);
    const energy_kwh = energy_j / 3.6e6;
    return {
      energy_j,
      energy_kwh,
      emissions_g: energy_kwh * this.options.carbonIntensity,
      power_w: devices.reduce((s, d) => s + d.watts, 0),
      estimated: this.sources.includes('estimated'),
      pue: this.options.pue,
      carbon_intensity_g_per_kwh: this.options.carbonIntensity,
      carbon_source: this.options.carbonSource ?? 'config',
      devices,
    };
  }
}
