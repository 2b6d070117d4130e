/** Paged lists (Service Fabric's `Paged…List`): the server's paging is in src/api/http.ts. */

export interface Page<T> {
  /** Empty when this is the last page; else give it back as ContinuationToken for the next. */
  ContinuationToken: string;
  Items: T[];
}

/** The paging query of a list route. */
export interface PageQuery {
  readonly continuationToken?: string;
  /** At most this many items; 0 or absent: all. */
  readonly maxResults?: number;
}
