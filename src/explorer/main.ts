/** The web explorer's entry (issue 21 fills it in). */
export {};
