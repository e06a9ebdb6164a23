// The system's light or dark preference, live: the stylesheet follows it by itself, but uPlot draws on a
// canvas with colours read once, so a chart is rebuilt when this changes.
import { useEffect, useState } from 'preact/hooks';

const query = '(prefers-color-scheme: dark)';

export function useColorScheme(): 'light' | 'dark' {
  const [dark, setDark] = useState(() => matchMedia(query).matches);
  useEffect(() => {
    const media = matchMedia(query);
    const update = () => setDark(media.matches);
    media.addEventListener('change', update);
    return () => media.removeEventListener('change', update);
  }, []);
  return dark ? 'dark' : 'light';
}

/** A colour from the stylesheet's variables (--name), as the current scheme sets it. */
export const cssColor = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(`--${name}`).trim();
