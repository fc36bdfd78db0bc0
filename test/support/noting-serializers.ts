import type { LazySerializers, SerializerFactory } from '../../src/http/lazy-serializers.ts';

type Compile = ReturnType<SerializerFactory>;
export type SerializerRoute = Parameters<Compile>[0];
type Serializer = ReturnType<Compile>;

/**
 * `build` with each answer it compiles shown to `note` (with the factory's arguments) on its way: for a vi.mock
 * of src/http/lazy-serializers.ts that watches what the app's serializers are given. `note` may return a serializer
 * to answer with in place of the compiled one (to see it run).
 */
export function notingFactory(
  build: SerializerFactory,
  note: (
    route: SerializerRoute,
    serialize: Serializer,
    factory: { external: unknown; options: unknown },
  ) => Serializer | void,
): SerializerFactory {
  return (external, options) => {
    const compile = build(external, options);
    return (route) => {
      const serialize = compile(route);
      return note(route, serialize, { external, options }) ?? serialize;
    };
  };
}

/** The app's lazySerializers (`real`, from importOriginal) with `note` on every answer its factory compiles. */
export function notingLazySerializers(
  real: { lazySerializers: (build?: SerializerFactory) => LazySerializers },
  note: Parameters<typeof notingFactory>[1],
): (build?: SerializerFactory) => LazySerializers {
  return (build) => {
    const lazy = real.lazySerializers(build);
    return { ...lazy, build: notingFactory(lazy.build, note) };
  };
}
