/** Reading a paged list whole: every page, following ContinuationToken until the service gives none. */
import type { Page } from '../wire/paging.ts';

/** Every item of a paged list; `read` asks for the page at a continuation token (undefined: the first). */
export async function allPages<T>(read: (continuationToken: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const page = await read(token);
    items.push(...page.Items);
    token = page.ContinuationToken || undefined;
  } while (token !== undefined);
  return items;
}
