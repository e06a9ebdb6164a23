// One request's state for a component: its answer, or the message to show when it failed. A request
// still in flight when its inputs change or the component goes away is aborted.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { isAbort } from './api';

interface RequestState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload(): void;
}

export const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function useRequest<T>(load: (signal: AbortSignal) => Promise<T>, inputs: unknown[]): RequestState<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal).then(
      (answer) => {
        setData(answer);
        setError(null);
        setLoading(false);
      },
      (failure) => {
        if (isAbort(failure)) return;
        setError(errorMessage(failure));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [...inputs, generation]);
  return { data, error, loading, reload };
}
