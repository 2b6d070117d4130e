/**
 * Following a backup or restore until it ends: a live bar on a terminal (state, bytes done /
 * total, throughput, ETA; by bytes when the total is known, else a spinner with the state), plain
 * lines otherwise, nothing with --quiet or --json. Ctrl-C is interrupt.ts's.
 */
import { SingleBar } from 'cli-progress';
import { type InterruptChoice, Interrupts } from './interrupt.ts';
import { bytesText } from '../core/bytes.ts';
import { type Output } from './output.ts';
import { RateMeter, etaText } from './rate.ts';

/** What a progress answer says, in the terms the view shows. */
export interface ProgressSnapshot {
  readonly state: string;
  readonly ended: boolean;
  readonly succeeded: boolean;
  readonly bytesTransferred?: number | undefined;
  readonly totalBytes?: number | undefined;
}

export interface ProgressView {
  update(s: ProgressSnapshot): void;
  /** Steps aside for a question (and comes back after). */
  pause(paused: boolean): void;
  stop(): void;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface BarPayload {
  label: string;
  state: string;
  bytes: string;
  rate: string;
  eta: string;
  spin: string;
  known: boolean;
}

/** cli-progress on stderr: a bar by bytes when the total is known, else a spinner. */
class BarView implements ProgressView {
  private readonly bar: SingleBar;
  private readonly meter = new RateMeter();
  private spin = 0;
  private started = false;
  private payload: BarPayload | undefined;

  constructor(private readonly out: Output, private readonly label: string) {
    this.bar = new SingleBar({
      stream: out.term.stderr,
      hideCursor: true,
      barsize: 30,
      fps: 8,
      format: (options, params, payload: BarPayload) => {
        const width = options.barsize ?? 30;
        if (!payload.known) return `${payload.label} ${payload.spin} ${payload.state}${payload.bytes ? ` | ${payload.bytes}` : ''}${payload.rate ? ` | ${payload.rate}` : ''}`;
        const filled = Math.round(params.progress * width);
        const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
        return `${payload.label} ${bar} ${Math.floor(params.progress * 100)}% | ${payload.bytes} | ${payload.rate || '–'} | ETA ${payload.eta || '–'} | ${payload.state}`;
      },
    });
  }

  update(s: ProgressSnapshot): void {
    const done = s.bytesTransferred ?? 0;
    if (s.bytesTransferred !== undefined) this.meter.add(Date.now(), s.bytesTransferred);
    // At Success the count read is the whole: a bar without a total fills then.
    const total = s.totalBytes ?? (s.succeeded && s.bytesTransferred !== undefined ? s.bytesTransferred : undefined);
    const rate = this.meter.bytesPerSecond();
    const left = total !== undefined ? this.meter.secondsLeft(total) : undefined;
    const payload: BarPayload = {
      label: this.label,
      state: s.state,
      bytes: s.bytesTransferred === undefined ? '' : total !== undefined ? `${bytesText(done)} / ${bytesText(total)}` : bytesText(done),
      rate: rate === undefined ? '' : `${bytesText(rate)}/s`,
      eta: s.ended ? '0s' : left === undefined ? '' : etaText(left),
      spin: SPINNER[this.spin++ % SPINNER.length]!,
      known: total !== undefined && total > 0,
    };
    this.payload = payload;
    const t = Math.max(1, total ?? 1);
    const v = total !== undefined ? Math.min(done, t) : 0;
    if (!this.started) {
      this.bar.start(t, v, payload);
      this.started = true;
    } else {
      this.bar.setTotal(t);
      this.bar.update(v, payload);
    }
  }

  pause(paused: boolean): void {
    if (!this.started || this.stopped) return;
    if (paused) this.bar.stop();
    else this.bar.start(this.bar.getTotal(), this.bar.getProgress() * this.bar.getTotal(), this.payload);
  }

  private stopped = false;

  stop(): void {
    this.stopped = true;
    if (this.started) this.bar.stop();
  }
}

/** Plain lines (no escapes): one when the state changes, and every 5 s with the bytes. */
class LineView implements ProgressView {
  private lastState = '';
  private lastAt = 0;

  constructor(private readonly out: Output, private readonly label: string) {}

  update(s: ProgressSnapshot): void {
    const now = Date.now();
    if (s.state === this.lastState && now - this.lastAt < 5_000) return;
    this.lastState = s.state;
    this.lastAt = now;
    const bytes = s.bytesTransferred === undefined ? '' : ` ${bytesText(s.bytesTransferred)}${s.totalBytes !== undefined ? ` of ${bytesText(s.totalBytes)}` : ''}`;
    this.out.note(`${this.label}: ${s.state}${bytes}`);
  }

  pause(): void {}
  stop(): void {}
}

class NoView implements ProgressView {
  update(): void {}
  pause(): void {}
  stop(): void {}
}

export function progressView(out: Output, label: string): ProgressView {
  if (out.bars) return new BarView(out, label);
  if (out.quiet || out.json) return new NoView();
  return new LineView(out, label);
}

export interface FollowOptions<T> {
  readonly read: () => Promise<T>;
  readonly snapshot: (v: T) => ProgressSnapshot;
  readonly out: Output;
  /** Shown before the bar, e.g. "backup 3f2a…". */
  readonly label: string;
  /** For the Ctrl-C question, e.g. "The backup of partition <id>". */
  readonly what: string;
  /** Asks the service to cancel; absent until it can (issue 23). */
  readonly cancel?: () => Promise<void>;
  readonly intervalMs?: number;
}

export type FollowOutcome<T> = { readonly kind: 'ended'; readonly last: T } | { readonly kind: 'detached'; readonly last: T | undefined };

/** Reads progress until the operation ends, or the user detaches with Ctrl-C. */
export async function follow<T>(o: FollowOptions<T>): Promise<FollowOutcome<T>> {
  const view = progressView(o.out, o.label);
  const interrupts = new Interrupts(o.out.term, { what: o.what, ...(o.cancel ? { cancel: o.cancel } : {}), onPrompt: (open) => view.pause(open) });
  let choice: InterruptChoice | undefined;
  void interrupts.decided.then((c) => {
    choice = c;
  });
  let last: T | undefined;
  try {
    for (;;) {
      if (choice === 'detach') return { kind: 'detached', last };
      if (choice === 'cancel' && o.cancel) {
        choice = undefined;
        await o.cancel();
      }
      last = await o.read();
      const s = o.snapshot(last);
      view.update(s);
      if (s.ended) return { kind: 'ended', last };
      await Promise.race([new Promise((r) => setTimeout(r, o.intervalMs ?? 250)), interrupts.decided]);
    }
  } finally {
    // The view first: closing an open question would otherwise bring the bar back.
    view.stop();
    interrupts.stop();
  }
}
