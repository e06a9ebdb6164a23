// The frame every page shares (the header and its links) and the choice of page from the URL's hash.
import { useEffect } from 'preact/hooks';
import { href, useRoute, type Route } from './route';
import { ComparePage } from './pages/compare';
import { PlaygroundPage } from './pages/playground';
import { RunPage } from './pages/run';
import { RunsPage } from './pages/runs';

const links: Array<{ page: Route['page']; label: string; href: string }> = [
  { page: 'runs', label: 'Runs', href: href.runs() },
  { page: 'compare', label: 'Compare', href: href.compare([]) },
  { page: 'playground', label: 'Playground', href: href.playground() },
];

export function App() {
  const route = useRoute();
  const current = route.page === 'run' ? 'runs' : route.page;
  useEffect(() => {
    const title = route.page === 'run' ? route.id : (links.find((link) => link.page === current)?.label ?? 'Not found');
    document.title = `${title} · Ringlet`;
  }, [route]);
  return (
    <>
      <header class="top">
        <a class="brand" href={href.runs()}>
          Ringlet
        </a>
        <nav aria-label="Pages">
          {links.map((link) => (
            <a key={link.page} href={link.href} aria-current={link.page === current ? 'page' : undefined}>
              {link.label}
            </a>
          ))}
        </nav>
      </header>
      <main>
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'runs':
      return <RunsPage />;
    case 'run':
      // A key per run: moving to another run starts its page afresh instead of mixing two runs' points.
      return <RunPage key={route.id} id={route.id} />;
    case 'compare':
      return <ComparePage ids={route.ids} />;
    case 'playground':
      return <PlaygroundPage initialCheckpoint={route.checkpoint} />;
    case 'not-found':
      return (
        <p>
          There is no page at this address. <a href={href.runs()}>See the runs.</a>
        </p>
      );
  }
}
