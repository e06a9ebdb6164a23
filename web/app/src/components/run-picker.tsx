// The runs being compared, each removable, and a list to add another: each change is a new address,
// so a comparison can be bookmarked or shared.
import { getRuns } from '../api';
import { href } from '../route';
import { useRequest } from '../use-request';

export function RunPicker({ ids }: { ids: string[] }) {
  const runs = useRequest((signal) => getRuns(signal), []);
  const others = (runs.data?.runs ?? [])
    .map((run) => run.id)
    .filter((id) => !ids.includes(id))
    .sort();
  const go = (next: string[]) => (location.hash = href.compare(next));
  return (
    <div class="toolbar">
      <ul class="chips" aria-label="Runs compared">
        {ids.map((id) => (
          <li key={id}>
            <a href={href.run(id)}>{id}</a>
            <button type="button" aria-label={`Remove ${id}`} onClick={() => go(ids.filter((known) => known !== id))}>
              ×
            </button>
          </li>
        ))}
      </ul>
      {others.length > 0 && (
        <div>
          <label for="add-run" class="sr-only">
            Add a run
          </label>
          <select id="add-run" value="" onChange={(e) => e.currentTarget.value && go([...ids, e.currentTarget.value])}>
            <option value="">Add a run…</option>
            {others.map((id) => (
              <option key={id} value={id}>
                {id}
              </option>
            ))}
          </select>
        </div>
      )}
      {runs.error && <p class="error">{runs.error}</p>}
    </div>
  );
}
