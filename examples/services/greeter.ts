/**
 * The greeter: the smallest service. `GET /api/greeter/greet?name=ann`
 * answers `{"result":"hello ann","status":200,"code":"Success",...}`.
 */
import { Type, defineContract, implement, param } from 'weft';

export const IGreeterAppService = defineContract({
  name: 'IGreeterAppService',
  methods: {
    greet: { params: [param('name', Type.String({ minLength: 1, maxLength: 100 }))], returns: Type.String() },
  },
});

export const greeterService = implement(IGreeterAppService, {
  greet: (name) => `hello ${name}`,
});
