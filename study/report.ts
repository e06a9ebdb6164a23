// `ringlet study report`: docs/study.md and its SVG figures, made from study/results/ alone.
// Cells are read by group, as study/plan.yml names them:
// - lang: one dataset per language at several scales (presets), several seeds each;
// - filters, spelling: a processed dataset at one scale against the lang cells of the same language and model;
// - moe: one mixed-language dataset, a mixture of experts against dense models of equal active and of equal
//   total parameters, told apart by their parameter counts;
// and every cell's samples against the real text of its dataset.
// Each number the report prints is also a named figure (exported by buildReport as `values`) that the
// hand-written answer quotes as {{name}}:
//   fertility.<dataset>.{bytes,chars,words}_per_token
//   budget.{cells,core_hours,train_tokens,bytes_per_cell} (bytes_per_cell when every cell has one budget)
//   lang.<model>.{params,eng_bpb,swe_bpb,swe_minus_eng_bpb,swe_minus_eng_pct,eng_blimp,swe_dalaj}
//   <filters|spelling>.<dataset>.<model>.{bpb,baseline_bpb,minus_baseline_bpb,minus_baseline_pct,
//                                        <suite>,baseline_<suite>,<suite>_minus_baseline}
//   moe.<lang>.{moe,dense_active,dense_total}_bpb, moe.<lang>.moe_minus_dense_{active,total}_{bpb,pct}
//   moe.routing.mutual_information_bits, moe.routing.layer<i>.mutual_information_bits
//   samples.<model>.<lang>.<readability field>, samples.reference.<lang>.<readability field>
// An interval's figure also has <name>_ci_low and <name>_ci_high; a group's mean over seeds has
// <name>_seed_min and <name>_seed_max.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../lm/atomic-write.js';
import { fillTemplate, type NamedValue } from './answer-template.js';
import {
  DEFAULT_OPTIONS,
  difference,
  estimate,
  type BootstrapOptions,
  type Difference,
  type GroupEstimate,
  type Interval,
  type Units,
} from './bootstrap.js';
import { bpbByParams, expertHeatmap, groupedBars, learningCurves, svg, type CurveRow } from './charts.js';
import type { Plan } from './plan.js';
import { readResults } from './results-files.js';
import type { Benchmark, CellResult, DatasetResult, Language, Readability } from './results.js';
import { mutualInformationBits, englishShares } from './routing.js';
import { count, fence, fixed, mean, quote, section, sum, table } from './markdown.js';
import { benchmarkUnits, heldOutUnits, moeRoles, only, scaleOrder, variantsOf, type Variant } from './report-cells.js';

export interface ReportInput {
  cells: CellResult[];
  datasets: DatasetResult[];
  /** Only the groups' questions are read from it, to head their sections. */
  plan?: Plan;
}

export interface Report {
  markdown: string;
  /** SVG documents by file name. */
  figures: Record<string, string>;
  values: Record<string, NamedValue>;
}

export interface ReportOptions {
  /** How the markdown links a figure: the figures' folder relative to the markdown's. */
  figureLinkDir: string;
  bootstrap: BootstrapOptions;
}

const SUITE_OF: Record<Language, Benchmark['suite']> = { eng: 'blimp', swe: 'dalaj' };
const SUITE_NAME: Record<Benchmark['suite'], string> = { blimp: 'BLiMP', dalaj: 'DaLAJ' };
const LANGUAGE_NAME: Record<Language, string> = { eng: 'English', swe: 'Swedish' };
const READABILITY_FIELDS = ['words', 'dictionary_share', 'repetition_rate', 'distinct_1', 'distinct_2'] as const;

export async function buildReport(input: ReportInput, options: Partial<ReportOptions> = {}): Promise<Report> {
  const report = new ReportBuilder(input, { figureLinkDir: 'study', bootstrap: DEFAULT_OPTIONS, ...options });
  return report.build();
}

/**
 * Reads the results under paths.resultsDir, writes the report to `out` and its figures to figuresDir
 * (default: study/ beside `out`), each file atomically, headed by the answer template when one is given.
 */
export async function writeReport(options: {
  paths: { resultsDir: string };
  out: string;
  answer?: string;
  figuresDir?: string;
  plan?: Plan;
  bootstrap?: BootstrapOptions;
}): Promise<{ out: string; figures: string[]; values: Record<string, number> }> {
  const { cells, datasets } = await readResults(options.paths.resultsDir);
  const outDir = path.dirname(path.resolve(options.out));
  const figuresDir = path.resolve(options.figuresDir ?? path.join(outDir, 'study'));
  const answerFile = options.answer;
  const answer = answerFile === undefined ? undefined : await readFile(answerFile, 'utf8');
  const report = await buildReport(
    { cells, datasets, plan: options.plan },
    {
      figureLinkDir: path.relative(outDir, figuresDir).split(path.sep).join('/'),
      ...(options.bootstrap && { bootstrap: options.bootstrap }),
    },
  );
  const markdown =
    answer === undefined ? report.markdown : `${fillTemplate(answer, report.values, answerFile!)}\n${report.markdown}`;
  await mkdir(figuresDir, { recursive: true });
  const figures: string[] = [];
  for (const [name, doc] of Object.entries(report.figures)) {
    const file = path.join(figuresDir, name);
    await writeFileAtomic(file, doc);
    figures.push(file);
  }
  await writeFileAtomic(path.resolve(options.out), markdown);
  return {
    out: path.resolve(options.out),
    figures,
    values: Object.fromEntries(Object.entries(report.values).map(([k, v]) => [k, v.value])),
  };
}

class ReportBuilder {
  private readonly values: Record<string, NamedValue> = {};
  private readonly figures: Record<string, string> = {};
  private readonly variants: Variant[];

  constructor(
    private readonly input: ReportInput,
    private readonly options: ReportOptions,
  ) {
    this.variants = variantsOf(input.cells);
  }

  async build(): Promise<Report> {
    const sections = [
      '# Study results',
      this.fertility(),
      this.budget(),
      await this.languages(),
      await this.ablations(),
      await this.moe(),
      this.samples(),
    ];
    return { markdown: `${section(...sections)}\n`, figures: this.figures, values: this.values };
  }

  // ---- sections

  private fertility(): string {
    const rows = [...this.input.datasets]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((d) => [
        d.name,
        d.languages.join(' + '),
        String(d.vocab),
        d.filters,
        d.spelling,
        this.put(`fertility.${d.name}.bytes_per_token`, d.fertility.bytes_per_token, 3),
        this.put(`fertility.${d.name}.chars_per_token`, d.fertility.chars_per_token, 3),
        this.put(`fertility.${d.name}.words_per_token`, d.fertility.words_per_token, 3),
        count(d.train_tokens),
      ]);
    if (rows.length === 0) return '';
    return section(
      '## Tokenizer fertility',
      "Each dataset's own byte-level BPE tokenizer on its validation split (end-of-document tokens not counted).",
      table(
        ['dataset', 'languages', 'vocab', 'filters', 'spelling', 'bytes/token', 'chars/token', 'words/token', 'train tokens'],
        rows,
      ),
    );
  }

  private budget(): string {
    if (this.variants.length === 0) return '';
    const rows = this.variants.map((v) => [
      v.group,
      v.dataset,
      v.model,
      String(v.cells.length),
      count(v.params.total),
      count(v.params.active),
      count(mean(v.cells.map((c) => c.train.tokens))),
      count(mean(v.cells.map((c) => c.train.bytes))),
      count(sum(v.cells.map((c) => c.train.seconds))),
      count(sum(v.cells.map((c) => c.eval_seconds))),
    ]);
    const cells = this.input.cells;
    const coreHours = sum(cells.map((c) => c.train.seconds + c.eval_seconds)) / 3600;
    const budgets = [...new Set(cells.map((c) => c.budget_bytes))];
    if (budgets.length === 1) this.put('budget.bytes_per_cell', budgets[0], 0);
    return section(
      '## Compute budget',
      "Each cell ran as one process on one core: its training (with the run's periodic validation and checkpoints), " +
        'then the scoring of its final checkpoint. Core-hours are the sum of both over the cells; with one process per ' +
        "core, the wall time on a machine of N cores is about core-hours / N, plus the datasets' preparation.",
      table(
        [
          'group',
          'dataset',
          'model',
          'cells',
          'params',
          'active params',
          'tokens per cell',
          'bytes per cell',
          'training s, all seeds',
          'scoring s, all seeds',
        ],
        rows,
      ),
      `${this.put('budget.cells', cells.length, 0)} cells, ${this.put('budget.train_tokens', sum(cells.map((c) => c.train.tokens)), 0)} training tokens, ` +
        `${this.put('budget.core_hours', coreHours, 2)} core-hours.`,
    );
  }

  private async languages(): Promise<string> {
    const variants = this.variants.filter((v) => v.group === 'lang');
    if (variants.length === 0) return '';
    const scales = scaleOrder(variants);
    const curves: CurveRow[] = [];
    const points: Parameters<typeof bpbByParams>[0] = [];
    const rows: string[][] = [];
    for (const model of scales) {
      const at = (language: Language) => variants.find((v) => v.model === model && only(v) === language);
      const eng = at('eng');
      const swe = at('swe');
      const name = `lang.${model}`;
      const row = [model, count((eng ?? swe)!.params.total)];
      this.put(`${name}.params`, (eng ?? swe)!.params.total, 0);
      for (const [language, v] of [
        ['eng', eng],
        ['swe', swe],
      ] as const) {
        if (v === undefined) {
          row.push('—');
          continue;
        }
        const e = this.estimate(
          `${name}.${language}_bpb`,
          v.cells.map((c) => heldOutUnits(c, language)),
          3,
        );
        row.push(e.text);
        points.push({
          language,
          params: v.params.total,
          value: e.interval.value,
          ci_low: e.interval.ci_low,
          ci_high: e.interval.ci_high,
        });
        for (const c of v.cells)
          for (const p of c.curve) curves.push({ line: c.id, language, scale: model, bytes: p.bytes, bpb: p.val_bpb });
      }
      if (eng && swe) {
        const d = this.difference(
          `${name}.swe_minus_eng`,
          swe.cells.map((c) => heldOutUnits(c, 'swe')),
          eng.cells.map((c) => heldOutUnits(c, 'eng')),
        );
        row.push(d.bpb, d.pct);
      } else row.push('—', '—');
      for (const [language, v] of [
        ['eng', eng],
        ['swe', swe],
      ] as const) {
        const suite = SUITE_OF[language];
        const units = v && benchmarkUnits(v.cells, suite);
        row.push(units ? this.estimate(`${name}.${language}_${suite}`, units, 3).text : '—');
      }
      rows.push(row);
    }
    this.figures['lang-curves.svg'] = await svg(learningCurves(curves, scales));
    this.figures['lang-bpb-params.svg'] = await svg(bpbByParams(points));
    return section(
      '## Swedish against English',
      this.question('lang'),
      "Bits per byte on each language's held-out novels (lower is better), the mean of the seeds with its 95% bootstrap " +
        "interval over windows and, in parentheses, the seeds' range. The difference is Swedish − English; the relative " +
        'difference is that over English. BLiMP (English) and DaLAJ (Swedish) are accuracies over their items.',
      table(
        ['model', 'params', 'English bpb', 'Swedish bpb', 'Swedish − English', 'relative', 'BLiMP (eng)', 'DaLAJ (swe)'],
        rows,
      ),
      this.figureLink('lang-curves.svg', 'Validation bits per byte against training bytes, one line per cell'),
      this.figureLink('lang-bpb-params.svg', 'Held-out bits per byte against parameters, with 95% intervals'),
    );
  }

  /** The filters and spelling groups: each dataset against the lang cells of its language and model. */
  private async ablations(): Promise<string> {
    const parts: string[] = [];
    for (const group of ['filters', 'spelling']) {
      const treated = this.variants.filter((v) => v.group === group);
      if (treated.length === 0) continue;
      const rows: string[][] = [];
      const bars: Parameters<typeof groupedBars>[0] = [];
      const datasets = new Set<string>();
      for (const v of treated) {
        const language = only(v);
        const baseline = this.variants.find((b) => b.group === 'lang' && b.model === v.model && only(b) === language);
        if (language === undefined || baseline === undefined) continue;
        datasets.add(v.dataset).add(baseline.dataset);
        const name = `${group}.${v.dataset}.${v.model}`;
        const units = (w: Variant) => w.cells.map((c) => heldOutUnits(c, language));
        const own = this.estimate(`${name}.bpb`, units(v), 3);
        const base = this.estimate(`${name}.baseline_bpb`, units(baseline), 3);
        const d = this.difference(`${name}.minus_baseline`, units(v), units(baseline));
        const suite = SUITE_OF[language];
        const ownSuite = benchmarkUnits(v.cells, suite);
        const baseSuite = benchmarkUnits(baseline.cells, suite);
        const accuracy =
          ownSuite && baseSuite
            ? [
                this.estimate(`${name}.baseline_${suite}`, baseSuite, 3).text,
                this.estimate(`${name}.${suite}`, ownSuite, 3).text,
                this.put(`${name}.${suite}_minus_baseline`, difference(ownSuite, baseSuite, this.options.bootstrap), 3),
              ]
            : ['—', '—', '—'];
        const text = v.cells[0].held_out[language]!;
        rows.push([
          v.dataset,
          baseline.dataset,
          v.model,
          `${text.dataset}${text.retokenized ? ' (retokenized)' : ''}`,
          base.text,
          own.text,
          d.bpb,
          d.pct,
          SUITE_NAME[suite],
          ...accuracy,
        ]);
        for (const [w, e] of [
          [baseline, base],
          [v, own],
        ] as const)
          bars.push({ group: LANGUAGE_NAME[language], bar: w.dataset, ...e.interval });
      }
      if (rows.length === 0) continue;
      const figure = `${group}-bpb.svg`;
      this.figures[figure] = await svg(groupedBars(bars, 'held-out bits per byte'));
      parts.push(
        section(
          `### ${group === 'filters' ? 'Quality filters and near-duplicate removal' : 'Spelling'}`,
          this.question(group),
          table(
            [
              'dataset',
              'against',
              'model',
              'held-out text',
              'bpb, against',
              'bpb',
              'difference',
              'relative',
              'benchmark',
              'accuracy, against',
              'accuracy',
              'difference',
            ],
            rows,
          ),
          "The accuracies' difference is paired by benchmark item.",
          this.filterCounts([...datasets]),
          this.figureLink(figure, `Held-out bits per byte, ${group}`),
        ),
      );
    }
    return parts.length === 0 ? '' : section('## Data processing', ...parts);
  }

  private filterCounts(names: string[]): string {
    const datasets = this.input.datasets.filter((d) => names.includes(d.name));
    const keys = [...new Set(datasets.flatMap((d) => Object.keys(d.filter_counts)))].sort();
    if (keys.length === 0) return '';
    return table(
      ['dataset', ...keys],
      datasets.map((d) => [d.name, ...keys.map((k) => (k in d.filter_counts ? count(d.filter_counts[k]) : '—'))]),
    );
  }

  private async moe(): Promise<string> {
    const variants = this.variants.filter((v) => v.group === 'moe');
    if (variants.length === 0) return '';
    const roles = moeRoles(variants);
    const languages = [...new Set(variants.flatMap((v) => v.cells.flatMap((c) => Object.keys(c.held_out) as Language[])))].sort();
    const rows: string[][] = [];
    const bars: Parameters<typeof groupedBars>[0] = [];
    for (const v of variants) {
      const role = [...roles].find(([, r]) => r === v)?.[0];
      const row = [v.model, role?.replace('_', ' ') ?? '', count(v.params.total), count(v.params.active)];
      for (const language of languages) {
        const units = v.cells.every((c) => c.held_out[language]) ? v.cells.map((c) => heldOutUnits(c, language)) : undefined;
        if (units === undefined) {
          row.push('—');
          continue;
        }
        const e = role
          ? this.estimate(`moe.${language}.${role}_bpb`, units, 3)
          : this.format(estimate(units, this.options.bootstrap), 3);
        row.push(e.text);
        bars.push({ group: LANGUAGE_NAME[language], bar: v.model, ...e.interval });
      }
      rows.push(row);
    }
    const moe = roles.get('moe');
    const comparisons: string[][] = [];
    for (const language of languages) {
      for (const dense of ['dense_active', 'dense_total'] as const) {
        const other = roles.get(dense);
        if (!moe || !other) continue;
        const units = (v: Variant) => v.cells.map((c) => heldOutUnits(c, language));
        const d = this.difference(`moe.${language}.moe_minus_${dense}`, units(moe), units(other));
        comparisons.push([
          LANGUAGE_NAME[language],
          `${moe.model} − ${other.model}`,
          d.bpb,
          d.pct,
          d.paired ? 'paired by window' : 'unpaired',
        ]);
      }
    }
    this.figures['moe-bpb.svg'] = await svg(groupedBars(bars, 'held-out bits per byte'));
    return section(
      '## Mixture of experts against dense',
      this.question('moe'),
      "Bits per byte on each language's held-out novels, read by the mixed-data tokenizer; the mean of the seeds with " +
        "its 95% interval and the seeds' range. Roles follow the parameter counts: the dense model whose total is " +
        "closest to the mixture's active parameters, and the one closest to its total.",
      table(['model', 'role', 'params', 'active params', ...languages.map((l) => `${LANGUAGE_NAME[l]} bpb`)], rows),
      comparisons.length > 0 ? table(['language', 'difference', 'bpb', 'relative', 'resampling'], comparisons) : '',
      this.figureLink('moe-bpb.svg', 'Held-out bits per byte by model and language'),
      moe ? await this.routing(moe) : '',
    );
  }

  private async routing(moe: Variant): Promise<string> {
    const routed = moe.cells.filter((c) => c.routing?.eng && c.routing?.swe);
    if (routed.length === 0) return '';
    const shares = routed.flatMap((c) =>
      englishShares({ eng: c.routing!.eng!.tokens, swe: c.routing!.swe!.tokens }).map((r) => ({ model: `seed ${c.seed}`, ...r })),
    );
    this.figures['moe-routing.svg'] = await svg(expertHeatmap(shares));
    const perSeed = routed.map((c) => mutualInformationBits(c.routing!.eng!.tokens, c.routing!.swe!.tokens));
    const layers = perSeed[0].length;
    const rows: string[][] = [];
    for (let l = 0; l < layers; l++) {
      rows.push([
        String(l),
        this.putSeeds(
          `moe.routing.layer${l}.mutual_information_bits`,
          perSeed.map((s) => s[l]),
          3,
        ),
      ]);
    }
    rows.push([
      'mean',
      this.putSeeds(
        'moe.routing.mutual_information_bits',
        perSeed.map((s) => mean(s)),
        3,
      ),
    ]);
    const dropped = routed.map(
      (c) => `${c.id}: ${count(c.routing!.eng!.dropped)} English, ${count(c.routing!.swe!.dropped)} Swedish`,
    );
    return section(
      '### Do the experts specialise by language?',
      'Each cell of the map is the share of English among the tokens an expert received in one layer, each ' +
        "language's tokens normalised by that language's total in the layer, so an expert indifferent to language " +
        'scores 0.5; one map per seed, since experts are numbered arbitrarily in each training run. The specialisation index is the mutual information between expert and ' +
        'language with both languages weighted equally, I = Σ_lang ½ Σ_e p(e|lang) log₂(p(e|lang) / p(e)) with ' +
        'p(e) = ½ Σ_lang p(e|lang): 0 bits when routing ignores language, 1 bit when no expert sees both. ' +
        'The mean of the seeds, with their range.',
      this.figureLink('moe-routing.svg', 'Share of English per expert and layer'),
      table(['layer', 'I(expert; language), bits'], rows),
      `Tokens dropped over capacity on the held-out windows: ${dropped.join('; ')}.`,
    );
  }

  private samples(): string {
    const variants = this.variants.filter((v) => v.group === 'lang' && v.cells.some((c) => c.samples.length > 0));
    if (variants.length === 0) return '';
    const rows: string[][] = [];
    const texts: string[] = [];
    for (const language of ['eng', 'swe'] as const) {
      for (const model of scaleOrder(variants)) {
        const v = variants.find((w) => w.model === model && only(w) === language);
        if (!v) continue;
        const samples = v.cells.flatMap((c) => c.samples.filter((s) => s.language === language));
        rows.push([
          LANGUAGE_NAME[language],
          model,
          ...this.readability(
            `samples.${model}.${language}`,
            samples.map((s) => s.readability),
          ),
        ]);
        const first = [...v.cells].sort((a, b) => a.seed - b.seed)[0];
        texts.push(
          `### ${LANGUAGE_NAME[language]}, ${model} (seed ${first.seed})`,
          ...first.samples.filter((s) => s.language === language).map((s) => `Prompt: ${quote(s.prompt)}\n\n${fence(s.text)}`),
        );
      }
      const dataset = this.input.datasets.find(
        (d) => d.languages.length === 1 && d.languages[0] === language && variants.some((v) => v.dataset === d.name),
      );
      if (dataset && dataset.reference_readability.length > 0)
        rows.push([
          LANGUAGE_NAME[language],
          `real text (${dataset.name} val)`,
          ...this.readability(`samples.reference.${language}`, dataset.reference_readability),
        ]);
    }
    return section(
      '## Samples',
      'Readability of the generated samples (mean over prompts and seeds) against excerpts of real held-out text of the ' +
        "same length. words: words per sample; dictionary: share of words the language's Hunspell dictionary accepts; " +
        'repetition: share of word 4-grams seen earlier in the text; distinct-1/2: unique word uni- and bigrams over all ' +
        '(study/readability.ts).',
      table(['language', 'model', 'words', 'dictionary', 'repetition', 'distinct-1', 'distinct-2'], rows),
      ...texts,
    );
  }

  // ---- named figures

  private readability(name: string, scores: Readability[]): string[] {
    return READABILITY_FIELDS.map((f) => this.put(`${name}.${f}`, mean(scores.map((s) => s[f])), f === 'words' ? 0 : 3));
  }

  private put(name: string, value: number | Interval, digits: number): string {
    if (typeof value === 'number') {
      if (name in this.values) throw new Error(`the report computed ${name} twice`);
      // Whole numbers (counts, parameters, bytes) read with thousands separators, as in the tables.
      const text = digits === 0 ? count(value) : fixed(value, digits);
      this.values[name] = { value, text };
      return text;
    }
    const text = this.put(name, value.value, digits);
    const low = this.put(`${name}_ci_low`, value.ci_low, digits);
    const high = this.put(`${name}_ci_high`, value.ci_high, digits);
    return `${text} [${low}, ${high}]`;
  }

  private putSeeds(name: string, seeds: number[], digits: number): string {
    const text = this.put(name, mean(seeds), digits);
    return `${text} (${this.put(`${name}_seed_min`, Math.min(...seeds), digits)}–${this.put(`${name}_seed_max`, Math.max(...seeds), digits)})`;
  }

  private estimate(name: string, seeds: Units[], digits: number): { text: string; interval: GroupEstimate } {
    const e = estimate(seeds, this.options.bootstrap);
    const text = this.put(name, e, digits);
    return {
      text: `${text} (${this.put(`${name}_seed_min`, e.seed_min, digits)}–${this.put(`${name}_seed_max`, e.seed_max, digits)})`,
      interval: e,
    };
  }

  private format(e: GroupEstimate, digits: number): { text: string; interval: GroupEstimate } {
    const f = (x: number) => fixed(x, digits);
    return { text: `${f(e.value)} [${f(e.ci_low)}, ${f(e.ci_high)}] (${f(e.seed_min)}–${f(e.seed_max)})`, interval: e };
  }

  /** a − b in bits per byte and in % of b, named <name>_bpb and <name>_pct. */
  private difference(name: string, a: Units[], b: Units[]): { bpb: string; pct: string; paired: boolean } {
    const d: Difference = difference(a, b, this.options.bootstrap);
    return { bpb: this.put(`${name}_bpb`, d, 3), pct: `${this.put(`${name}_pct`, d.relative, 1)} %`, paired: d.paired };
  }

  private question(group: string): string {
    const q = this.input.plan?.groups[group]?.question;
    return q ? `*${q}.*` : '';
  }

  private figureLink(name: string, caption: string): string {
    return `![${caption}](${this.options.figureLinkDir}/${name})`;
  }
}
