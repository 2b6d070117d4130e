/** The explorer's two ways of reading the service: load once (again on demand), and poll while something runs. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './session.ts';

export interface Loaded<T> {
  readonly value: T | undefined;
  readonly error: string | undefined;
  readonly loading: boolean;
  readonly reload: () => void;
}

/** `load()` when `deps` change and on `reload()`; an answer that arrives after a newer call started is dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ value: T | undefined; error: string | undefined; loading: boolean }>({ value: undefined, error: undefined, loading: true });
  const [round, setRound] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const call = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => { if (call === latest.current) setState({ value, error: undefined, loading: false }); },
      (err: unknown) => { if (call === latest.current) setState((s) => ({ value: s.value, error: errorText(err), loading: false })); },
    );
    // `load` is a new closure each render; `deps` say when it means something new.
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload };
}

/**
 * Calls `tick` now and every `intervalMs` for as long as it answers true (an operation still
 * runs); a new `restartKey` (an operation just started) starts it again. Stops when unmounted.
 */
export function usePoll(tick: () => Promise<boolean>, intervalMs: number, restartKey: unknown): void {
  const current = useRef(tick);
  current.current = tick;
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async (): Promise<void> => {
      const again = await current.current().catch(() => false);
      if (!stopped && again) timer = window.setTimeout(() => void run(), intervalMs);
    };
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [restartKey, intervalMs]);
}
