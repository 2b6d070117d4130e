/** Names and ids of the sample application that `lifeboat start` hosts, as the API spells them. */
export const APP_ID = 'SampleApp';
export const APP_NAME = 'fabric:/SampleApp';
export const SERVICE_ID = 'SampleApp~MyStatefulService';
export const SERVICE_NAME = 'fabric:/SampleApp/MyStatefulService';
/** A well-formed partition id that no partition has. */
export const UNKNOWN_PID = '0badc0de-0000-4000-8000-000000000001';
