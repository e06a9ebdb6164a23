// A uPlot line chart against training tokens, fed plain aligned arrays. Lines on the left axis share its
// scale; a line marked 'right' gets a second axis (tokens/s beside MFU). Charts on one page move their
// cursors together, since they share the x axis.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { cssColor, useColorScheme } from '../color-scheme';
import { count } from '../format';

interface LineSeries {
  label: string;
  values: Array<number | null>;
  side?: 'left' | 'right';
  format?: (value: number) => string;
}

interface Props {
  title: string;
  /** Training tokens, ascending. */
  x: number[];
  series: LineSeries[];
  height?: number;
}

/** Three significant digits, without trailing zeros: 0.000300 → 0.0003, 1234.5 → 1230. */
const short = (value: number) => String(Number(value.toPrecision(3)));
const lastValue = (values: Array<number | null>) => values.findLast((value) => value != null) ?? null;

export function LineChart({ title, x, series, height = 220 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const scheme = useColorScheme();
  const data: uPlot.AlignedData = [x, ...series.map((line) => line.values)];
  const latestData = useRef(data);
  latestData.current = data;
  const shownData = useRef<uPlot.AlignedData | null>(null);
  const shape = series.map((line) => `${line.label}:${line.side ?? 'left'}`).join('|');

  // The chart is built once per set of lines and colour scheme; new points only replace its data.
  useEffect(() => {
    const element = box.current!;
    const plot = new uPlot(chartOptions(series, element.clientWidth, height), latestData.current, element);
    chart.current = plot;
    shownData.current = latestData.current;
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
      chart.current = null;
    };
  }, [scheme, shape, height]);

  // Pages memoise their arrays, so a column that is the same array holds the same points.
  useEffect(() => {
    const shown = shownData.current;
    if (!chart.current || !shown || data.every((column, i) => column === shown[i])) return;
    chart.current.setData(data);
    shownData.current = data;
  });

  const latest = series
    .map((line) => {
      const value = lastValue(line.values);
      return value == null ? null : `${line.label} ${(line.format ?? short)(value)}`;
    })
    .filter(Boolean)
    .join(' · ');
  const summary = x.length ? `${latest}${latest ? ' · ' : ''}at ${count(x.at(-1))} tokens · ${x.length} points` : 'No points yet';
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <p class="latest">{summary}</p>
      <div ref={box} role="img" aria-label={`${title}: ${summary}`} />
    </figure>
  );
}

function chartOptions(series: LineSeries[], width: number, height: number): uPlot.Options {
  const axisColour = cssColor('chart-axis');
  const gridColour = cssColor('chart-grid');
  const axisStyle = { stroke: axisColour, grid: { stroke: gridColour, width: 1 }, ticks: { stroke: gridColour, width: 1 } };
  // Room for the longest tick label, so small learning rates are not cut off.
  const size = (_: uPlot, values: string[] | null) => Math.max(40, ...(values ?? []).map((text) => text.length * 7 + 18));
  const formatOf = (side: 'left' | 'right') => series.find((line) => (line.side ?? 'left') === side)?.format ?? short;
  const ticks = (format: (value: number) => string) => (_: uPlot, splits: number[]) => splits.map((value) => format(value));
  const axes: uPlot.Axis[] = [
    { ...axisStyle, values: ticks(count) },
    { ...axisStyle, size, values: ticks(formatOf('left')) },
  ];
  if (series.some((line) => line.side === 'right'))
    axes.push({ ...axisStyle, side: 1, scale: 'right', size, grid: { show: false }, values: ticks(formatOf('right')) });
  return {
    width,
    height,
    cursor: { sync: { key: 'tokens' } },
    scales: { x: { time: false } },
    axes,
    series: [
      { label: 'tokens', value: (_, value) => (value == null ? '–' : count(value)) },
      ...series.map((line, i) => ({
        label: line.label,
        stroke: cssColor(`series-${(i % 6) + 1}`),
        width: 1.5,
        // Lines from different records (train loss every step, val loss every eval) leave gaps to bridge.
        spanGaps: true,
        scale: line.side === 'right' ? 'right' : 'y',
        // A right-axis line is dashed: it may trace the same shape as a left one (MFU follows tokens/s).
        ...(line.side === 'right' && { dash: [5, 4] }),
        value: (_: uPlot, value: number | null) => (value == null ? '–' : (line.format ?? short)(value)),
      })),
    ],
  };
}
