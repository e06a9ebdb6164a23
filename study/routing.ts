// What the mixture's routing says about language: per layer, the distribution over experts of each
// language's held-out tokens (RoutingSchema's [layer][expert] counts), normalised by that language's
// total so that the larger held-out text does not weigh more.

type Counts = number[][]; // [layer][expert]

/** p(expert | language) per layer. */
function distribution(counts: Counts): number[][] {
  return counts.map((layer) => {
    const total = layer.reduce((s, x) => s + x, 0);
    return layer.map((x) => (total === 0 ? 0 : x / total));
  });
}

/**
 * Share of English per layer and expert: p(e|eng) / (p(e|eng) + p(e|swe)), with both distributions averaged
 * over the seeds first; 0.5 for an expert neither language uses.
 */
export function englishShares(model: { eng: Counts; swe: Counts }): { layer: number; expert: number; eng_share: number }[] {
  // One model's routing: experts are interchangeable between training runs (expert 2 of one seed is not
  // expert 2 of another), so shares are never averaged across seeds.
  const eng = distribution(model.eng);
  const swe = distribution(model.swe);
  return eng.flatMap((layer, l) =>
    layer.map((p, e) => ({ layer: l, expert: e, eng_share: p + swe[l][e] === 0 ? 0.5 : p / (p + swe[l][e]) })),
  );
}

/**
 * Mutual information between expert and language per layer, in bits, with the two languages equally likely:
 * I = Σ_lang ½ Σ_e p(e|lang) log₂(p(e|lang) / p(e)), p(e) = ½ Σ_lang p(e|lang). 0 when routing ignores
 * language, 1 when no expert receives both.
 */
export function mutualInformationBits(eng: Counts, swe: Counts): number[] {
  const pe = distribution(eng);
  const ps = distribution(swe);
  return pe.map((layer, l) => {
    let bits = 0;
    layer.forEach((a, e) => {
      const b = ps[l][e];
      const m = (a + b) / 2;
      if (a > 0) bits += 0.5 * a * Math.log2(a / m);
      if (b > 0) bits += 0.5 * b * Math.log2(b / m);
    });
    return bits;
  });
}
