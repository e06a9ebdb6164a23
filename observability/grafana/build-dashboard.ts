// Generates observability/grafana/ringlet-dashboard.json with the Grafana Foundation SDK, so the panels
// are typed. Run: node --import tsx observability/grafana/build-dashboard.ts (test/observability-
// prometheus.test.ts checks the file is current and that every panel's query returns data).
import fs from 'node:fs';
import path from 'node:path';
import type { Builder } from '@grafana/grafana-foundation-sdk/cog';
import { LegendDisplayMode, LegendPlacement, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, DatasourceVariableBuilder, RowBuilder, type Panel } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';

const datasource = { type: 'prometheus', uid: '${datasource}' };

const query = (expr: string, legend: string) => new DataqueryBuilder().expr(expr).legendFormat(legend).datasource(datasource);

function timeseries(title: string, unit: string, targets: Array<[string, string]>, description: string) {
  const legend = new VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(LegendDisplayMode.List)
    .placement(LegendPlacement.Bottom);
  const panel = new TimeseriesPanel()
    .title(title)
    .description(description)
    .unit(unit)
    .datasource(datasource)
    .legend(legend)
    .height(8)
    .span(12);
  for (const [expr, legend] of targets) panel.withTarget(query(expr, legend));
  return panel;
}

function stat(title: string, unit: string, expr: string, description: string) {
  return new StatPanel()
    .title(title)
    .description(description)
    .unit(unit)
    .datasource(datasource)
    .height(4)
    .span(6)
    .withTarget(query(expr, title));
}

/** Rows of panels; every query here must return data from a running single-process training job. */
export const ROWS: Array<[string, Array<Builder<Panel>>]> = [
  [
    'Training',
    [
      timeseries(
        'Throughput',
        'short',
        [
          ['sum(rate(ringlet_train_tokens_total[$__rate_interval]))', 'tokens/s'],
          ['sum(rate(ringlet_train_samples_total[$__rate_interval]))', 'samples/s'],
        ],
        'Tokens and windows trained on per second, all workers',
      ),
      timeseries(
        'Loss',
        'none',
        [
          ['ringlet_train_loss', 'train {{instance}}'],
          ['ringlet_validation_loss', 'validation {{instance}}'],
        ],
        'Cross-entropy in nats/token; the NaN-loss alert watches the training loss',
      ),
      timeseries(
        'Model FLOPs utilisation',
        'percentunit',
        [['ringlet_mfu_ratio', '{{device}} {{precision}}, peak {{peak_flops}} FLOP/s']],
        'Achieved model FLOP/s (6N + 12·L·d·T per token) over the dense peak named in the legend',
      ),
      timeseries(
        'Step time',
        's',
        [
          ['histogram_quantile(0.5, sum by (le) (rate(ringlet_train_step_duration_seconds_bucket[$__rate_interval])))', 'p50'],
          ['histogram_quantile(0.95, sum by (le) (rate(ringlet_train_step_duration_seconds_bucket[$__rate_interval])))', 'p95'],
        ],
        'Wall time per optimizer step',
      ),
      timeseries(
        'Learning rate and gradient norm',
        'none',
        [
          ['ringlet_train_learning_rate', 'learning rate'],
          ['ringlet_train_grad_norm', 'grad norm'],
        ],
        'Schedule and global gradient norm before clipping',
      ),
    ],
  ],
  [
    'Power, energy, emissions',
    [
      timeseries(
        'Power',
        'watt',
        [['sum by (device, source) (ringlet_power_watts)', '{{device}} ({{source}})']],
        'Device power; source "estimated" means TDP × utilisation, no counter was readable',
      ),
      stat('Energy', 'kwatth', 'sum(ringlet_energy_joules_total) / 3.6e6', 'Energy since the job started, PUE included'),
      stat(
        'Emissions',
        'massg',
        'sum(ringlet_emissions_grams_total)',
        'g CO2e: energy × grid carbon intensity (docs/observability.md)',
      ),
      stat('Carbon intensity', 'none', 'max(ringlet_carbon_intensity_grams_per_kwh)', 'g CO2e per kWh used for emissions'),
    ],
  ],
  [
    'Communication and workers',
    [
      timeseries(
        'All-reduce bandwidth',
        'Bps',
        [
          ['sum(ringlet_allreduce_bus_bandwidth_bytes_per_second)', 'bus bandwidth'],
          ['sum(rate(ringlet_allreduce_bytes_total[$__rate_interval]))', 'algorithm bytes/s'],
        ],
        'Bus bandwidth of the latest ring all-reduce (NCCL tests convention) and all-reduced bytes per second',
      ),
      timeseries(
        'Worker health',
        'short',
        [
          ['sum(ringlet_workers_live)', 'live'],
          ['sum(ringlet_workers_expected)', 'expected'],
          ['sum(increase(ringlet_worker_restarts_total[$__rate_interval]))', 'restarts'],
          ['max(ringlet_straggler_lag_seconds)', 'straggler lag (s)'],
        ],
        'Workers in the ring, restarts, and how far the slowest worker lags at the step barrier',
      ),
      timeseries(
        'Checkpoint duration',
        's',
        [
          [
            'sum(rate(ringlet_checkpoint_duration_seconds_sum[$__rate_interval])) / sum(rate(ringlet_checkpoint_duration_seconds_count[$__rate_interval]))',
            'mean',
          ],
        ],
        'Wall time of checkpoint writes',
      ),
    ],
  ],
];

export function buildDashboard() {
  const dashboard = new DashboardBuilder('Ringlet training')
    .uid('ringlet-training')
    .tags(['ringlet'])
    .refresh('10s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'));
  for (const [title, panels] of ROWS) {
    dashboard.withRow(new RowBuilder(title));
    for (const panel of panels) dashboard.withPanel(panel);
  }
  return dashboard.build();
}

export const DASHBOARD_FILE = path.join(import.meta.dirname, 'ringlet-dashboard.json');

export const dashboardJson = () => `${JSON.stringify(buildDashboard(), null, 2)}\n`;

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  fs.writeFileSync(DASHBOARD_FILE, dashboardJson());
  process.stderr.write(`wrote ${DASHBOARD_FILE}\n`);
}
