-- Devices by hardware variant: a rollout plan that names variants reads only their devices,
-- and the device list's hw_variant filter stops scanning the table.
CREATE INDEX devices_by_hw_variant ON devices (hw_variant, id);
