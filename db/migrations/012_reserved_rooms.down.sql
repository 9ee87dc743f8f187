-- A room renamed by 012 keeps its new name.
ALTER TABLE rooms DROP CONSTRAINT rooms_name_not_reserved;
