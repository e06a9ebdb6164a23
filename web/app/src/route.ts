// Hash routes, so the server only ever sends index.html: #/runs, #/runs/<id>, #/compare?runs=a,b,
// #/playground[?checkpoint=<id>]. Run ids hold '/', so each is one encodeURIComponent'd segment.
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'runs' }
  | { page: 'run'; id: string }
  | { page: 'compare'; ids: string[] }
  | { page: 'playground'; checkpoint: string | null }
  | { page: 'not-found' };

export const href = {
  runs: () => '#/runs',
  run: (id: string) => `#/runs/${encodeURIComponent(id)}`,
  compare: (ids: string[]) => `#/compare?runs=${ids.map(encodeURIComponent).join(',')}`,
  playground: (checkpoint?: string) =>
    checkpoint ? `#/playground?checkpoint=${encodeURIComponent(checkpoint)}` : '#/playground',
};

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const segments = path.split('/').filter(Boolean);
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return null;
    }
  };
  // Raw values, decoded here once: a ',' inside a run id stays escaped until the list is split.
  const parameter = (name: string) =>
    query
      .split('&')
      .find((pair) => pair.startsWith(`${name}=`))
      ?.slice(name.length + 1) ?? '';
  if (segments.length === 0 || (segments[0] === 'runs' && segments.length === 1)) return { page: 'runs' };
  if (segments[0] === 'runs' && segments.length === 2) {
    const id = decode(segments[1]!);
    return id ? { page: 'run', id } : { page: 'not-found' };
  }
  if (segments[0] === 'compare' && segments.length === 1) {
    const ids = parameter('runs').split(',').filter(Boolean).map(decode);
    return ids.every((id): id is string => id !== null) ? { page: 'compare', ids } : { page: 'not-found' };
  }
  if (segments[0] === 'playground' && segments.length === 1)
    return { page: 'playground', checkpoint: decode(parameter('checkpoint')) || null };
  return { page: 'not-found' };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
