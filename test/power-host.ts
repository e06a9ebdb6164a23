// What the power assertions of the tests expect, decided the way the product decides it: the sources that
// observability/power.ts's own detection (EnergyMeter.forMachine) finds for a config. On this machine that is
// the CPU estimate; on a GPU host it is nvidia-smi and RAPL. A fake host with both (a powercap tree and an
// nvidia-smi script in a temp folder, the only doubles) shows the assertions follow the host.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ObservabilityConfig } from '../observability/config.js';
import { CPU_TDP_WATTS_PER_CORE, EnergyMeter, type PowerSource } from '../observability/power.js';

export interface HostPower {
  sources: PowerSource[]; // sorted, as EnergyMeter.sources
  estimated: boolean; // what summaries and step records say in energy_estimated
  maxWatts: Record<PowerSource, number>; // the most one device can read: the estimate's TDP, a generous physical bound
}

/** The power sources the product picks for this config on this machine. */
export async function hostPower(config: ObservabilityConfig): Promise<HostPower> {
  const sources = (await EnergyMeter.forMachine(config)).sources;
  const tdp = config.cpu_tdp_watts ?? CPU_TDP_WATTS_PER_CORE * os.cpus().length;
  return { sources, estimated: sources.includes('estimated'), maxWatts: { estimated: tdp, rapl: 5000, 'nvidia-smi': 5000 } };
}

/** `ringlet_power_watts` series of a job: labelled with exactly the host's sources, each a plausible reading. */
export function assertPowerSeries(series: Array<{ source: string; device: string; watts: number }>, host: HostPower): void {
  assert.deepEqual([...new Set(series.map((s) => s.source))].sort(), host.sources, JSON.stringify(series));
  for (const s of series) {
    const max = host.maxWatts[s.source as PowerSource];
    assert.ok(Number.isFinite(s.watts) && s.watts >= 0 && s.watts <= max, `${s.device} (${s.source}): ${s.watts} W, max ${max}`);
  }
}

/** A powercap zone as the kernel lays it out: name, energy_uj and max_energy_range_uj. */
export function writeRaplZone(root: string, zone: string, name: string, uj: number, maxUj = 262143328850): void {
  fs.mkdirSync(path.join(root, zone), { recursive: true });
  fs.writeFileSync(path.join(root, zone, 'name'), `${name}\n`);
  fs.writeFileSync(path.join(root, zone, 'energy_uj'), `${uj}\n`);
  fs.writeFileSync(path.join(root, zone, 'max_energy_range_uj'), `${maxUj}\n`);
}

/**
 * A fake nvidia-smi in `dir/bin`: answers the name query from `dir/names.csv` (two H100s) and the power query
 * from `dir/power.csv`, which the caller writes. Returns the script's path.
 */
export function fakeNvidiaSmi(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const script = path.join(bin, 'nvidia-smi');
  fs.writeFileSync(
    script,
    `#!/bin/sh\ncase "$*" in\n  *name*) cat "${dir}/names.csv" ;;\n  *power.draw*) cat "${dir}/power.csv" ;;\n  *) exit 2 ;;\nesac\n`,
  );
  fs.chmodSync(script, 0o755);
  fs.writeFileSync(path.join(dir, 'names.csv'), '0, NVIDIA H100 80GB HBM3\n1, NVIDIA H100 80GB HBM3\n');
  return script;
}

/**
 * A GPU host in `dir`: one RAPL package whose counter gains `raplWatts` while the host runs, and one GPU that
 * nvidia-smi reads at `gpuWatts`. `observability` points the product's detection at it.
 */
export function startFakeGpuHost(dir: string, raplWatts = 50, gpuWatts = 70) {
  const powercap = path.join(dir, 'powercap');
  writeRaplZone(powercap, 'intel-rapl:0', 'package-0', 0);
  const gpu = path.join(dir, 'gpu');
  const nvidiaSmi = fakeNvidiaSmi(gpu);
  fs.writeFileSync(path.join(gpu, 'names.csv'), '0, NVIDIA H100 80GB HBM3\n');
  fs.writeFileSync(path.join(gpu, 'power.csv'), `0, ${gpuWatts.toFixed(2)}\n`);
  const started = performance.now();
  const counter = path.join(powercap, 'intel-rapl:0', 'energy_uj');
  // Renamed into place, so that the product never reads a half-written counter.
  const timer = setInterval(() => {
    const uj = Math.round(((performance.now() - started) / 1000) * raplWatts * 1e6);
    fs.writeFileSync(`${counter}.tmp`, `${uj}\n`);
    fs.renameSync(`${counter}.tmp`, counter);
  }, 50);
  timer.unref();
  return {
    observability: { powercap_root: powercap, nvidia_smi: nvidiaSmi },
    gpuWatts,
    stop: () => clearInterval(timer),
  };
}
