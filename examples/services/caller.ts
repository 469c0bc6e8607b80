/**
 * A service that calls another through its typed proxy.
 */
import { Type, defineContract, implement, param } from 'weft';
import { IGreeterAppService } from './greeter.js';

export const ICallerAppService = defineContract({
  name: 'ICallerAppService',
  methods: {
    greetTwice: { params: [param('name', Type.String({ minLength: 1 }))], returns: Type.Array(Type.String()) },
  },
});

export const callerService = implement(ICallerAppService, ({ proxy }) => {
  const greeter = proxy(IGreeterAppService);
  return {
    greetTwice: async (name) => [await greeter.greet(name), await greeter.greet(name.toUpperCase())],
  };
});
