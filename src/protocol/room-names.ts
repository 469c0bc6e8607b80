/**
 * What a room name may be, and the history stream a room's pushes are kept
 * in. Pure: the gateway, the SessionManager and the directory share it.
 */

/** No room name is longer, whatever `websocket.maxRoomNameLength` says: it goes in a u16-length envelope field and in Redis members. */
export const MAX_ROOM_NAME_LENGTH = 1024;

// eslint-disable-next-line no-control-regex -- control characters (C0, DEL, C1) are exactly what is refused: room names are separated by newlines in Redis
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** What is wrong with a room name (past `maxLength` characters, empty, control characters), or undefined when it is good. */
export function roomProblem(room: unknown, maxLength = MAX_ROOM_NAME_LENGTH): string | undefined {
  if (typeof room !== 'string' || room === '') return 'a room name must be a non-empty string';
  if (room.length > maxLength) return `room name of ${room.length} characters is over the limit of ${maxLength} (websocket.maxRoomNameLength)`;
  if (CONTROL.test(room)) return 'a room name must not hold control characters';
  return undefined;
}

/**
 * The history "service" a room's pushes are kept under: `<service>#room`.
 * A contract name is an identifier, so no service, and so no businessId
 * stream, can have this name: a room and a businessId of the same name
 * never share a stream.
 */
export function roomStream(service: string): string {
  return `${service}#room`;
}

/** RoomAck results other than a count: refused (a bad name, a limit), or the directory could not be written. */
export const ROOM_REFUSED = -1;
export const ROOM_UNAVAILABLE = -2;
