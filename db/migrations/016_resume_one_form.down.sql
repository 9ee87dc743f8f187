-- Nothing to restore: no code of migration 015's time calls the
-- 2-argument form (bd_ctl_item uses the 3-argument one).
SELECT 1;
