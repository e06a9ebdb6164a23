// Power, energy, emissions and MFU on a fake machine: a powercap tree in a temp folder and a fake
// nvidia-smi on PATH, since this machine has neither. Expected figures are computed by hand.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ObservabilityConfigSchema } from '../observability/config.js';
import { carbonIntensity } from '../observability/carbon.js';
import {
  PEAKS,
  datasheetTflops,
  deviceFromGpuName,
  modelFlopsUtilisation,
  peakDeviceOfGpu,
  resolvePeak,
} from '../observability/mfu.js';
import { CpuEstimateMeter, EnergyMeter, machineId, parseNvidiaSmi } from '../observability/power.js';
import { JobTelemetry } from '../coordinator/telemetry.js';
import { flopsPerToken, presetConfig } from '../lm/model-config.js';
import { formatEnergy } from '../train/progress.js';
import { fakeNvidiaSmi, writeRaplZone } from './power-host.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-obs-energy-'));

test('energy and emissions from RAPL (with a counter wrap) and nvidia-smi match a hand computation', async () => {
  const sysfs = path.join(work, 'powercap');
  const gpuDir = path.join(work, 'gpu');
  writeRaplZone(sysfs, 'intel-rapl:0', 'package-0', 262_000_000_000);
  writeRaplZone(sysfs, 'intel-rapl:0:0', 'core', 5_000_000_000); // a subzone, inside package-0: not counted again
  writeRaplZone(sysfs, 'intel-rapl:1', 'package-1', 1_000_000_000);
  writeRaplZone(sysfs, 'intel-rapl:2', 'psys', 9_000_000_000); // the platform zone overlaps the packages
  const bin = path.dirname(fakeNvidiaSmi(gpuDir));
  fs.writeFileSync(path.join(gpuDir, 'power.csv'), '0, 200.00\n1, 100.00\n');
  const savedPath = process.env.PATH;
  process.env.PATH = `${bin}:${savedPath}`;
  let now = 0;
  try {
    const config = ObservabilityConfigSchema.parse({ powercap_root: sysfs, pue: 1.5, carbon_region: 'SE' });
    const meter = await EnergyMeter.forMachine(config, { now: () => now });
    assert.deepEqual(meter.gpuNames, ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
    assert.deepEqual(meter.sources, ['nvidia-smi', 'rapl']);
    await meter.sample(); // baseline at t = 0
    now = 10;
    fs.writeFileSync(path.join(sysfs, 'intel-rapl:0', 'energy_uj'), '500000000\n'); // wrapped past max
    fs.writeFileSync(path.join(sysfs, 'intel-rapl:0:0', 'energy_uj'), '9000000000\n');
    fs.writeFileSync(path.join(sysfs, 'intel-rapl:1', 'energy_uj'), '1650000000\n');
    fs.writeFileSync(path.join(sysfs, 'intel-rapl:2', 'energy_uj'), '99000000000\n');
    fs.writeFileSync(path.join(gpuDir, 'power.csv'), '0, 300.00\n1, [N/A]\n');
    await meter.sample();
    const t = meter.totals();
    // package-0: (262143328850 - 262000000000 + 500000000) µJ = 643.32885 J; package-1: 650 J;
    // gpu0: (200 + 300) / 2 W × 10 s = 2500 J; gpu1 unreadable. Sum 3793.32885 J × PUE 1.5 = 5689.993275 J;
    // / 3.6e6 J/kWh × 41 g/kWh (Sweden) = 0.0648027011875 g.
    assert.ok(Math.abs(t.energy_j - 5689.993275) < 1e-6, `energy ${t.energy_j}`);
    assert.ok(Math.abs(t.energy_kwh - 5689.993275 / 3.6e6) < 1e-12);
    assert.ok(Math.abs(t.emissions_g - 0.0648027011875) < 1e-9, `emissions ${t.emissions_g}`);
    assert.equal(t.estimated, false);
    assert.equal(t.carbon_intensity_g_per_kwh, 41);
    const byDevice = Object.fromEntries(t.devices.map((d) => [d.device, d]));
    assert.deepEqual(Object.keys(byDevice).sort(), ['cpu-package-0', 'cpu-package-1', 'gpu0']);
    assert.equal(byDevice.gpu0.source, 'nvidia-smi');
    assert.equal(byDevice.gpu0.watts, 300);
    assert.equal(byDevice['cpu-package-1'].source, 'rapl');
    assert.ok(Math.abs(byDevice['cpu-package-1'].watts - 65) < 1e-9);
    assert.ok(Math.abs(t.power_w - (64.332885 + 65 + 300)) < 1e-6);
  } finally {
    process.env.PATH = savedPath;
  }
});

test('without readable counters the CPU estimate is TDP × utilisation, marked estimated', async () => {
  let busy = 0;
  let idle = 0;
  const times = () => [{ times: { user: busy, nice: 0, sys: 0, idle, irq: 0 } }];
  const estimate = new CpuEstimateMeter(100, times);
  let now = 0;
  const meter = new EnergyMeter([estimate], { pue: 1.2, carbonIntensity: 481, now: () => now });
  await meter.sample();
  busy = 750; // 75% busy over 4 s at 100 W TDP: 75 W, 300 J, × PUE 1.2 = 360 J
  idle = 250;
  now = 4;
  await meter.sample();
  const t = meter.totals();
  assert.equal(t.estimated, true);
  assert.deepEqual(t.devices, [{ device: 'cpu', source: 'estimated', watts: 75, energy_j: 360 }]);
  assert.ok(Math.abs(t.emissions_g - (360 / 3.6e6) * 481) < 1e-12);

  // No powercap folder and no nvidia-smi: the machine meter falls back to the estimate.
  const config = ObservabilityConfigSchema.parse({
    powercap_root: path.join(work, 'absent'),
    nvidia_smi: path.join(work, 'absent-smi'),
  });
  const machine = await EnergyMeter.forMachine(config);
  assert.equal(machine.totals().estimated, true);
  assert.deepEqual(machine.sources, ['estimated']);
  assert.deepEqual(machine.gpuNames, []);
});

test('RAPL counters readable only by root are skipped, not misread', async () => {
  if (process.getuid?.() === 0) {
    // root reads through mode 000, so test the other unreadable case: a counter that is not a number
    const root = path.join(work, 'garbled');
    writeRaplZone(root, 'intel-rapl:0', 'package-0', 0);
    fs.writeFileSync(path.join(root, 'intel-rapl:0', 'energy_uj'), 'Permission denied\n');
    const meter = await EnergyMeter.forMachine(ObservabilityConfigSchema.parse({ powercap_root: root, gpu_power: 'off' }));
    assert.equal(meter.totals().estimated, true);
  } else {
    const root = path.join(work, 'locked');
    writeRaplZone(root, 'intel-rapl:0', 'package-0', 0);
    fs.chmodSync(path.join(root, 'intel-rapl:0', 'energy_uj'), 0o000);
    const meter = await EnergyMeter.forMachine(ObservabilityConfigSchema.parse({ powercap_root: root, gpu_power: 'off' }));
    assert.equal(meter.totals().estimated, true);
  }
});

test('nvidia-smi output parses, and malformed lines are an error', () => {
  assert.deepEqual(parseNvidiaSmi('0, 71.23\n1, [N/A]\n\n'), [{ index: 0, value: '71.23' }]);
  assert.throws(() => parseNvidiaSmi('garbage'), /unexpected nvidia-smi line/);
});

test('carbon intensity comes from config or the country table, and unknown regions are an error', () => {
  assert.equal(carbonIntensity('se').gPerKwh, 41);
  assert.equal(carbonIntensity('WORLD').gPerKwh, 481);
  assert.deepEqual(carbonIntensity('SE', 12), { gPerKwh: 12, source: 'config', region: 'SE' });
  assert.throws(() => carbonIntensity('XX'), /no carbon intensity for region "XX".*carbon_intensity_g_per_kwh/);
});

test('MFU divides model FLOP/s by the dense datasheet peak, and the peak is overridable', async () => {
  const config = (o: object) => ObservabilityConfigSchema.parse(o);
  const resolve = (o: object, device: string, count: number) => resolvePeak(config(o), device, count);
  assert.equal((await resolve({ precision: 'bf16' }, 'h100-sxm', 1)).flops, 989e12);
  assert.equal((await resolve({ precision: 'tf32' }, 'h100-sxm', 8)).flops, 8 * 495e12);
  assert.equal((await resolve({ precision: 'fp32' }, 'a100', 1)).source, 'datasheet');
  // Without a configured precision, the one the backend computes in (the cuda backend's TF32 by default).
  assert.equal((await resolvePeak(config({}), 'h100-sxm', 1, 'tf32')).flops, 495e12);
  assert.equal((await resolvePeak(config({}), 'h200', 1, 'bf16')).flops, 989e12);
  assert.equal((await resolvePeak(config({ precision: 'fp32' }), 'h100-sxm', 1, 'bf16')).flops, 67e12);
  assert.equal((await resolve({ precision: 'fp32' }, 'a100', 1)).flops, 19.5e12);
  assert.deepEqual(await resolve({ precision: 'bf16', peak_flops: 1e15 }, 'h100-sxm', 2), {
    device: 'h100-sxm',
    precision: 'bf16',
    count: 2,
    flops: 2e15,
    source: 'configured',
    detail: 'observability.peak_flops',
  });
  // A configured CPU figure wins over this machine's measured one (test/observability-cpu-peak.test.ts).
  const cpu = await resolve({ cpu_peak_flops_per_core: 50e9 }, 'cpu', 2);
  assert.equal(cpu.flops, 100e9);
  assert.equal(cpu.source, 'configured');
  assert.equal((await resolve({ peak_flops: 80e9 }, 'cpu', 2)).flops, 160e9);
  await assert.rejects(resolve({ precision: 'bf16' }, 'v100-sxm', 1), /no bf16 figure/);
  await assert.rejects(resolve({}, 'tpu-v9', 1), /unknown device "tpu-v9"/);
  // A GPU found at run time that the table lacks: the job goes on, its MFU is NaN (null in JSON) until configured.
  const unknown = await resolve({}, peakDeviceOfGpu('NVIDIA GeForce RTX 4090'), 1);
  assert.ok(Number.isNaN(unknown.flops));
  assert.equal(unknown.source, 'unknown');
  assert.match(unknown.detail, /observability\.peak_flops/);
  assert.equal((await resolve({ peak_flops: 165e12 }, peakDeviceOfGpu('NVIDIA GeForce RTX 4090'), 1)).flops, 165e12);
  assert.equal(datasheetTflops('NVIDIA H100 80GB HBM3', 'bf16'), 989);
  assert.equal(datasheetTflops('NVIDIA H200', 'tf32'), 495);
  assert.equal(datasheetTflops('NVIDIA V100-SXM2-32GB', 'bf16'), null);
  assert.equal(datasheetTflops('NVIDIA GeForce RTX 4090', 'tf32'), null);
  for (const [key, peak] of Object.entries(PEAKS)) assert.ok(peak.source.length > 0, `${key} names its source`);
  assert.equal(deviceFromGpuName('NVIDIA H100 80GB HBM3'), 'h100-sxm');
  assert.equal(deviceFromGpuName('NVIDIA H100 PCIe'), 'h100-pcie');
  assert.equal(deviceFromGpuName('NVIDIA A100-SXM4-80GB'), 'a100');
  assert.equal(deviceFromGpuName('NVIDIA GeForce GTX 1080'), null);

  // micro: N = 1,328,256 (tied embedding once), L = 4, d = 128, T = 128: 6N + 12·L·d·T = 8,755,968 FLOPs/token.
  const micro = presetConfig('micro');
  assert.equal(flopsPerToken(micro), 6 * 1_328_256 + 12 * 4 * 128 * 128);
  // 1,000 tokens/s on one H100 in bf16: 8.755968e9 / 989e12.
  assert.ok(Math.abs(modelFlopsUtilisation(1000, flopsPerToken(micro), 989e12) - 8.755968e9 / 989e12) < 1e-18);
});

test('energy reads as J, kJ or kWh', () => {
  assert.equal(formatEnergy(12.4), '12 J');
  assert.equal(formatEnergy(12_400), '12.4 kJ');
  assert.equal(formatEnergy(7.2e6), '2.000 kWh');
});

test("other machines' reported energy joins the job's totals once, across a restart of their meter", async () => {
  // This machine's meter: one RAPL zone that does not move, so all the energy below is reported energy.
  const sysfs = path.join(work, 'powercap-still');
  writeRaplZone(sysfs, 'intel-rapl:0', 'package-0', 1_000_000);
  const config = ObservabilityConfigSchema.parse({ powercap_root: sysfs, gpu_power: 'off', carbon_region: 'SE' });
  const telemetry = await JobTelemetry.start(config, { flopsPerToken: 1, workers: 3 });
  telemetry.hostEnergy('w1', 'machine-b', 10, 'estimated');
  telemetry.hostEnergy('w1', 'machine-b', 25, 'estimated'); // +15
  telemetry.hostEnergy('w1', 'machine-b', 4, 'estimated'); // its meter started again: +4
  telemetry.hostEnergy('w2', 'machine-b', 6, 'estimated'); // the role moved to another worker there: +6
  telemetry.hostEnergy('w3', 'machine-c', 100, 'rapl');
  assert.equal(telemetry.runEnergy().energy_j, 135);
  const counted = (await telemetry.metrics.energy.get()).values;
  const joules = (device: string) => counted.filter((v) => v.labels.device === device).reduce((s, v) => s + v.value, 0);
  assert.equal(joules('machine-b'), 35);
  assert.equal(joules('machine-c'), 100);
  const summary = await telemetry.close();
  assert.deepEqual(summary.energy_by_host_j, { [machineId()]: 0, 'machine-b': 35, 'machine-c': 100 });
  assert.equal(summary.energy_j, 135);
  const sweden = carbonIntensity('SE').gPerKwh;
  assert.ok(Math.abs(summary.emissions_g - (135 / 3.6e6) * sweden) < 1e-12, `${summary.emissions_g} g`);
  assert.equal(summary.energy_estimated, true, "machine-b's figure is an estimate");
});
