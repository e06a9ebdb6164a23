// Grid carbon intensity by country, for emissions = energy × intensity when the config gives no figure.
// Source: Our World in Data, "Carbon intensity of electricity generation" (data from Ember and the Energy
// Institute), year 2023, grams of CO2-equivalent per kWh generated, rounded; WORLD is Ember's 2023 global
// average. https://ourworldindata.org/grapher/carbon-intensity-electricity
export const CARBON_SOURCE = 'Our World in Data / Ember and Energy Institute, 2023';

export const CARBON_INTENSITY: Record<string, number> = {
  WORLD: 481,
  AT: 111,
  AU: 549,
  BE: 138,
  BR: 98,
  CA: 170,
  CN: 582,
  CZ: 450,
  DE: 381,
  DK: 152,
  FI: 79,
  FR: 56,
  GR: 337,
  IE: 291,
  IN: 713,
  NO: 30,
  PL: 662,
  SE: 41,
};

/** The intensity to use and where it came from: the config's figure, else the region's table entry. */
export function carbonIntensity(region: string, override?: number): { gPerKwh: number; source: string; region: string } {
  if (override !== undefined) return { gPerKwh: override, source: 'config', region };
  const key = region.toUpperCase();
  const value = CARBON_INTENSITY[key];
  if (value === undefined)
    throw new Error(
      `no carbon intensity for region "${region}"; set observability.carbon_intensity_g_per_kwh or choose one of: ` +
        Object.keys(CARBON_INTENSITY).join(', '),
    );
  return { gPerKwh: value, source: CARBON_SOURCE, region: key };
}
