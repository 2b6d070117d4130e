/**
 * Ctrl-C while the CLI waits for a backup or restore. The first one asks what to do: detach (the
 * operation goes on in the service), keep waiting, or — once the service can cancel (issue 23) —
 * cancel; a second Ctrl-C detaches at once. Without a terminal on stdin there is no one to ask, so
 * the first Ctrl-C detaches.
 */
import { createInterface } from 'node:readline';
import type { Terminal } from './output.ts';

export type InterruptChoice = 'detach' | 'wait' | 'cancel';

export interface InterruptOptions {
  /** What is being waited for, e.g. "the backup of partition <id>". */
  readonly what: string;
  /** Offered when given: asks the service to cancel. Absent until the service has a cancel API (issue 23). */
  readonly cancel?: () => Promise<void>;
  /** Called before the question is asked and after it is answered (the progress bar steps aside). */
  readonly onPrompt?: (open: boolean) => void;
}

/** The question the first Ctrl-C asks. */
export function interruptQuestion(o: Pick<InterruptOptions, 'what' | 'cancel'>): string {
  const cancel = o.cancel ? ', [c]ancel it' : '';
  const later = o.cancel ? '' : ' (cancelling comes with issue 23: the service cannot cancel an operation yet)';
  return `\nInterrupted. ${o.what} goes on in the service. [d]etach (stop waiting; it continues)${cancel}, or keep [w]aiting?${later} Ctrl-C again detaches. [d/w${o.cancel ? '/c' : ''}] `;
}

/** A choice from the answer typed: d, w, c (c only with cancel); empty or unknown keeps waiting. */
export function choiceOf(answer: string, canCancel: boolean): InterruptChoice {
  const a = answer.trim().toLowerCase();
  if (a.startsWith('d')) return 'detach';
  if (a.startsWith('c') && canCancel) return 'cancel';
  return 'wait';
}

/**
 * Listens for SIGINT while `watch` runs; `decided` resolves with the choice once one is made
 * (never, when no Ctrl-C comes). `stop()` removes the listener and closes an open question.
 */
export class Interrupts {
  private prompt: { close(): void } | undefined;
  private resolveChoice: ((c: InterruptChoice) => void) | undefined;
  readonly decided: Promise<InterruptChoice>;
  private readonly onSigint = (): void => this.interrupted();

  constructor(private readonly term: Terminal, private readonly o: InterruptOptions) {
    this.decided = new Promise((resolve) => {
      this.resolveChoice = resolve;
    });
    process.on('SIGINT', this.onSigint);
  }

  private decide(c: InterruptChoice): void {
    // The bar comes back only when waiting goes on.
    this.closePrompt(c === 'wait');
    if (c === 'wait') return;
    this.resolveChoice?.(c);
    this.resolveChoice = undefined;
  }

  private interrupted(): void {
    if (this.prompt || this.term.stdin.isTTY !== true) {
      this.decide('detach');
      return;
    }
    this.o.onPrompt?.(true);
    const rl = createInterface({ input: this.term.stdin, output: this.term.stderr, terminal: true });
    this.prompt = rl;
    // In a terminal readline reads Ctrl-C itself: the second one.
    rl.on('SIGINT', () => this.decide('detach'));
    rl.question(interruptQuestion(this.o), (answer) => {
      const c = choiceOf(answer, this.o.cancel !== undefined);
      if (c === 'wait') this.term.stderr.write('Waiting on.\n');
      this.decide(c);
    });
  }

  private closePrompt(resume: boolean): void {
    if (!this.prompt) return;
    const p = this.prompt;
    this.prompt = undefined;
    p.close();
    if (resume) this.o.onPrompt?.(false);
  }

  stop(): void {
    process.off('SIGINT', this.onSigint);
    this.closePrompt(false);
  }
}
