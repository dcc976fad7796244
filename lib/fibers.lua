-- placeholder facade, replaced by the runtime-core work
return {}
